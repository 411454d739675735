"""`voicebot --self-test`: start the app offscreen, load every default model, run one
typed turn through the Conversation tab, transcribe a synthesised clip, print a JSON
report and exit 0 only if every check passed.

It is the smoke test of the desktop bundle (packaging/): the frozen app runs exactly
this, so a missing library, Qt plugin, data file or model package shows up as a failed
check with its error instead of a crash on a user's machine.

Side effects are kept away from the user: settings and history live in a throwaway
``VOICEBOT_HOME`` (the default settings are tested, not the user's), while the models
folder stays the user's, so a one-time conversion (the chat model) is done once and
kept. The reply's audio never reaches the user's speaker: it is played to the output
device named by ``VOICEBOT_SELFTEST_OUTPUT`` (one that discards audio, such as a
PulseAudio null sink), and without that it is synthesised and its samples counted.
The report says which happened.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebot import __version__

OUTPUT_ENV = "VOICEBOT_SELFTEST_OUTPUT"
QUESTION = "What is the capital of France?"
TURN_TIMEOUT_S = 60.0
PROCESS_START_ENV = "VOICEBOT_SELFTEST_T0"


@dataclass
class Check:
    name: str
    ok: bool = False
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "ok": self.ok, "seconds": round(self.seconds, 3),
               "details": self.details}
        if self.error:
            out["error"] = self.error
        return out


class Report:
    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.started = time.perf_counter()

    def run(self, name: str, fn: Callable[[dict[str, Any]], Any]) -> Any:
        """Run ``fn(details)``; an exception or a falsy result fails the check."""
        check = Check(name)
        self.checks.append(check)
        t0 = time.perf_counter()
        result = None
        try:
            result = fn(check.details)
            check.ok = result is not False
        except Exception as exc:  # every failure is reported, the next checks still run
            check.error = f"{type(exc).__name__}: {exc}"
            check.details["traceback"] = traceback.format_exc(limit=6)
        check.seconds = time.perf_counter() - t0
        return result

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


# ----- environment, set before Qt, PortAudio or torch are loaded ------------------------
def _process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), for start-up timing."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start / ticks)
    except (OSError, ValueError, IndexError):
        return None


def _prepare_environment(home: Path) -> dict[str, str]:
    from voicebot.paths import HOME_ENV, MODELS_ENV, user_dirs

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault(MODELS_ENV, str(user_dirs().models))  # the user's, see above
    os.environ[HOME_ENV] = str(home)
    return {"QT_QPA_PLATFORM": os.environ["QT_QPA_PLATFORM"],
            "models_dir": os.environ[MODELS_ENV], "home": str(home)}


# ----- the audio sink of the test turn --------------------------------------------------
class AudioSink:
    """What the Conversation plays the reply to: a real Player on a null device, or,
    without one, nothing at all. Either way it counts the samples it was given."""

    def __init__(self, player: Any = None) -> None:
        self.player = player
        self.samples = 0
        self.seconds = 0.0
        self.chunks = 0

    @property
    def first_sample_time(self) -> float | None:
        return self.player.first_sample_time if self.player is not None else None

    def play(self, chunk: Any, rate: float, last: bool = False) -> None:
        self.samples += len(chunk)
        self.seconds += len(chunk) / float(rate)
        self.chunks += 1
        if self.player is not None:
            self.player.play(chunk, rate, last=last)

    def finish(self) -> None:
        if self.player is not None:
            self.player.finish()

    def stop(self) -> bool:
        return self.player.stop() if self.player is not None else True

    def wait_first_sample(self, timeout: float | None = None) -> float | None:
        return self.player.wait_first_sample(timeout) if self.player is not None else None

    def wait_done(self, timeout: float | None = None) -> bool:
        return self.player.wait_done(timeout) if self.player is not None else True


def _null_output_device() -> str | None:
    """The device named by VOICEBOT_SELFTEST_OUTPUT, or None.

    Not found automatically: ALSA's "null" plugin accepts audio without pacing the
    stream (PortAudio's callback stalls and the player reports the device lost), and
    Windows and macOS have no null device at all. A real discarding device is e.g. a
    PulseAudio null or pipe sink (the tests' virtual speaker)."""
    return os.environ.get(OUTPUT_ENV, "").strip() or None


# ----- checks ------------------------------------------------------------------------
def _versions() -> dict[str, Any]:
    from importlib import metadata

    versions: dict[str, Any] = {"voicebot": __version__, "python": platform.python_version(),
                                "platform": platform.platform(),
                                "frozen": bool(getattr(sys, "frozen", False))}
    for dist in ("torch", "torchaudio", "transformers", "tokenizers", "onnxruntime-gpu",
                 "onnxruntime", "coqui-tts", "vosk", "pocketsphinx", "sounddevice",
                 "PySide6-Essentials", "pyqtgraph", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _providers() -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    # get_available_providers() lists what onnxruntime was compiled with; whether the
    # CUDA provider's library is actually there (the cpu bundle leaves it out) is
    # another matter.
    capi = Path(ort.__file__).parent / "capi"
    cuda_library = any(capi.glob("*onnxruntime_providers_cuda*"))
    return {"onnxruntime": ort.get_available_providers(),
            "onnxruntime_cuda_provider_library": cuda_library,
            "torch_cuda": torch.cuda.is_available(),
            "torch_cuda_version": torch.version.cuda,
            "torch_threads": torch.get_num_threads()}


def run_self_test(out: Any = None) -> int:
    """Run every check, print the JSON report to ``out`` (stdout); 0 if all passed."""
    out = out or sys.stdout
    process_age_at_start = _process_age_s()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="voicebot-selftest-") as tmp:
        environment = _prepare_environment(Path(tmp))
        state: dict[str, Any] = {}
        try:
            _run_checks(report, state)
        except Exception as exc:  # even a crash between checks ends in a report
            report.checks.append(Check("self_test", error=f"{type(exc).__name__}: {exc}",
                                       details={"traceback": traceback.format_exc(limit=6)}))
        finally:
            _shut_down(state)
        result = {
            "ok": report.ok,
            "seconds": round(time.perf_counter() - report.started, 3),
            "process_age_at_start_s": process_age_at_start,
            "environment": environment,
            "versions": _versions(),
            "providers": state.get("providers"),
            "checks": [c.as_dict() for c in report.checks],
        }
    print(json.dumps(result, indent=2, default=str), file=out, flush=True)
    return 0 if report.ok else 1


def _run_checks(report: Report, state: dict[str, Any]) -> None:
    from voicebot.settings import Settings

    settings = Settings()  # the defaults: the models that ship with the app
    report.run("window", lambda d: _check_window(d, settings, state))
    report.run("audio_devices", lambda d: _check_audio(d, state))
    report.run("torch_onnxruntime", lambda d: _check_runtimes(d, state))
    report.run("recognizer", lambda d: _check_recognizer(d, settings, state))
    report.run("ngram_lm", lambda d: _check_ngram(d, settings, state))
    report.run("chat_model", lambda d: _check_chat(d, settings, state))
    report.run("voice", lambda d: _check_voice(d, settings, state))
    report.run("vad", lambda d: _check_vad(d, state))
    report.run("vosk", lambda d: _check_vosk(d, state))
    report.run("typed_turn", lambda d: _check_turn(d, settings, state))
    report.run("transcribe", lambda d: _check_transcribe(d, state))


def _check_runtimes(d: dict, state: dict) -> bool:
    """torch and onnxruntime import (the bundle's largest native libraries)."""
    import torch

    from voicebot.pipeline.session import ASR_THREADS

    torch.set_num_threads(ASR_THREADS)  # as load_engines does
    state["providers"] = _providers()
    d.update(state["providers"])
    return "CPUExecutionProvider" in state["providers"]["onnxruntime"]


def _check_window(d: dict, settings: Any, state: dict) -> bool:
    # Qt is only imported here: voicebot.selftest is outside the GUI-free core, but the
    # command line reaches it by name (cli.py) so `voicebot --help` never loads Qt.
    from PySide6.QtWidgets import QApplication

    from voicebot.ui.app import create_app
    from voicebot.ui.main_window import MainWindow

    app = create_app(sys.argv[:1])
    window = MainWindow(settings, load_models=False)
    window.show()
    app.processEvents()
    state.update(app=app, window=window)
    age = _process_age_s()
    d.update(platform=QApplication.platformName(), size=[window.width(), window.height()],
             title=window.windowTitle(), icon=not app.windowIcon().isNull(),
             first_window_since_process_start_s=None if age is None else round(age, 3))
    return window.isVisible() and not app.windowIcon().isNull()


def _check_audio(d: dict, state: dict) -> bool:
    import sounddevice as sd

    devices = sd.query_devices()
    d["portaudio"] = sd.get_portaudio_version()[1]
    d["output_devices"] = [x["name"] for x in devices if x["max_output_channels"] > 0]
    d["input_devices"] = [x["name"] for x in devices if x["max_input_channels"] > 0]
    name = _null_output_device()
    player = None
    if name is not None:
        from voicebot.audio.player import Player

        player = Player(name)
        if player.fallback_reason:  # never fall back to the user's real speaker
            raise RuntimeError(f"output device {name!r} not usable: {player.fallback_reason}")
        player.open()
        d["reply_audio"] = f"played to the output device {player.device.label}"
    else:
        d["reply_audio"] = (f"no output device named in {OUTPUT_ENV}: the reply is "
                            "synthesised and its samples counted, not played")
    state["sink"] = AudioSink(player)
    return True


def _check_recognizer(d: dict, settings: Any, state: dict) -> bool:
    from voicebot.asr.factory import recognizer_from_settings

    recognizer = recognizer_from_settings(settings.asr)
    state["recognizer"] = recognizer
    d.update(engine=settings.asr.engine, model=settings.asr.model,
             sample_rate=recognizer.sample_rate)
    return True


def _check_ngram(d: dict, settings: Any, state: dict) -> bool:
    from voicebot.asr.factory import ngram_from_settings
    from voicebot.lm.ngram import sentence_logprob

    lm = ngram_from_settings(settings.asr)
    state["ngram"] = lm
    good = sentence_logprob(lm, ["what", "is", "the", "capital", "of", "france"])
    scrambled = sentence_logprob(lm, ["capital", "the", "france", "what", "of", "is"])
    d.update(model=settings.asr.ngram_model, logprob_sentence=round(good, 2),
             logprob_scrambled=round(scrambled, 2))
    return good > scrambled  # a working LM prefers English word order


def _check_chat(d: dict, settings: Any, state: dict) -> bool:
    from voicebot.lm.loading import load_chat_model
    from voicebot.pipeline.session import CHAT_THREADS

    c = settings.chat
    chat = load_chat_model(c.model, system_prompt=c.system_prompt,
                           max_reply_tokens=c.max_reply_tokens,
                           context_tokens=c.context_tokens, threads=CHAT_THREADS)
    state["chat"] = chat
    d.update(model=c.model, backend=type(chat.backend).__name__)
    return True


def _check_voice(d: dict, settings: Any, state: dict) -> bool:
    from voicebot.pipeline.session import TTS_THREADS
    from voicebot.tts.voices import VoiceOptions, load_voice

    voice = load_voice(settings.tts.voice, VoiceOptions(threads=TTS_THREADS))
    state["voice"] = voice
    d.update(voice=settings.tts.voice, sample_rate=voice.sample_rate)
    return True


def _check_vad(d: dict, state: dict) -> bool:
    import numpy as np

    from voicebot.audio.vad import SileroVad

    vad = SileroVad()
    state["vad"] = vad
    silence = vad.probabilities(np.zeros(16000, dtype=np.float32))
    d["max_speech_probability_in_silence"] = round(max(silence), 3)
    return max(silence) < 0.5


def _check_vosk(d: dict, state: dict) -> bool:
    import numpy as np

    from voicebot.asr.factory import create_recognizer

    recognizer = create_recognizer("vosk", "vosk-ko", nbest=1)
    recognizer.feed(np.zeros(8000, dtype=np.float32))
    hypotheses = recognizer.finish(1)
    d.update(model="vosk-ko", silence_transcript=hypotheses[0].text if hypotheses else "")
    return True


def _check_turn(d: dict, settings: Any, state: dict) -> bool:
    """Typed text -> the chat model's reply in the window -> the voice speaks it."""
    from voicebot.pipeline.audio_ends import AudioEnds
    from voicebot.pipeline.session import Engines

    app, window, sink = state["app"], state["window"], state["sink"]
    tab = window.conversation_tab
    engines = Engines(state["recognizer"], state["ngram"], state["chat"], state["voice"])
    # The tab's session speaks to the self-test's sink, never to the user's speaker, and
    # leaves the user's microphone closed: the turn is typed.
    tab.use_engines(engines, AudioEnds(speaker=sink))
    d["tab_status"] = tab.status_label.text()
    tab.text_box.setText("Hello! Say one short sentence about the sea.")
    tab.send_text()
    turn = tab.conversation.current_turn
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while not turn.finished.is_set() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    shown = tab.saved_turns[-1]["reply"] if tab.saved_turns else ""
    d.update(user=turn.user_text, reply=turn.reply_text.strip(), shown_in_window=bool(shown),
             spoken_clauses=len(turn.spoken), audio_chunks=sink.chunks,
             audio_samples=sink.samples, audio_seconds=round(sink.seconds, 2),
             played_to_device=sink.player is not None, error=turn.error,
             timing_ms={k: round(v) for k, v in turn.timing.breakdown().items()})
    if sink.player is not None:
        d["output_underflows"] = sink.player.underflows
    return (turn.finished.is_set() and turn.error is None and bool(turn.reply_text.strip())
            and bool(shown) and sink.samples > 0)


def _check_transcribe(d: dict, state: dict) -> bool:
    """The voice says a question; the recognizer (and the VAD) must hear it."""
    import numpy as np
    import soxr

    from voicebot.tts.base import collect

    voice = state["voice"]
    # Noise off for this check (when the voice has any): the same clip every run, so the
    # check tests the bundle, not the luck of one draw of the voice's sampling noise.
    saved = getattr(voice, "config", None)
    if hasattr(voice, "set_noise"):
        voice.set_noise(0.0, 0.0)
    try:
        audio, rate = collect(voice.stream(QUESTION))
    finally:
        if saved is not None and hasattr(voice, "set_noise"):
            voice.config = saved
    clip = soxr.resample(audio, rate, 16000).astype(np.float32)
    # A quarter second of silence first, then the question in 0.1 s blocks, like the
    # microphone. No silence after it: with a trailing pause the Whisper engine's final
    # decode sometimes keeps only the first words (reported to the ASR owner); the
    # self-test checks the bundle, not that engine's end-of-utterance handling.
    clip = np.concatenate([np.zeros(4000, np.float32), clip])
    recognizer = state["recognizer"]
    recognizer.reset()
    for start in range(0, len(clip), 1600):
        recognizer.feed(clip[start:start + 1600])
    hypotheses = recognizer.finish(5)
    text = hypotheses[0].text.strip() if hypotheses else ""
    state["vad"].reset()
    speech = max(state["vad"].probabilities(clip), default=0.0)
    words = set(re.findall(r"[a-z]+", text.lower()))
    d.update(said=QUESTION, heard=text, clip_seconds=round(len(clip) / 16000, 2),
             alternatives=len(hypotheses), vad_max_speech_probability=round(speech, 3))
    return {"capital", "france"} <= words and speech > 0.5


def _shut_down(state: dict) -> None:
    window = state.get("window")
    if window is not None:
        window.close()  # closes the conversation and the tab's audio streams
        state["app"].processEvents()
    sink = state.get("sink")
    if sink is not None and sink.player is not None:
        sink.player.close()


def run(args: Any = None) -> int:
    """cli.py's entry for ``--self-test``."""
    return run_self_test()
