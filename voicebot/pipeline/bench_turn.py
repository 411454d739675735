"""`voicebot bench turn`: spoken turns through the virtual audio devices, end to end.

Push-to-talk (the default): the question is spoken into the virtual microphone while the
talk button is held, released, and the clock runs until the first reply sample reaches
the virtual speaker (voice to voice).

Hands-free (``--turn-mode hands-free``, virtual devices only: the end of a turn is heard
as silence, which only a microphone that keeps running delivers): nobody presses
anything; the question is spoken and the clock runs from the end of its speech (the last
10 ms above -30 dB of its loudest, known from the samples injected) until the first reply
sample is played. That includes the end-of-turn decision, which is also reported alone
(``end_of_turn_ms``: end of speech to the turn's end being decided), and every question
that opened more than one turn counts as cut off.

The reply starts on the last partial transcript once the speaker pauses unless
``--turn-no-speculation`` (the figures say how often that guess was kept or restarted);
run both in one session to see what it saves.

The questions are synthesised once by the embedded voice.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np

from voicebot.bench_error import BenchUnfinishedError
from voicebot.pipeline.timing import STAGES

# Push-to-talk: the button is let go this long after the question's recording ends (its
# own trailing quiet comes first).
HOLD_MS = 200.0
QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "Can you recommend a good book?",
    "What is the weather like on the moon?",
    "Tell me something about cats.",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bench turn")
    group.add_argument("--turn-count", type=int, default=10, help="spoken turns to run")
    group.add_argument("--turn-device", default="cpu", help="cpu, cuda or auto")
    group.add_argument("--turn-mode", default="ptt", choices=("ptt", "hands-free"),
                       help="ptt: the talk button is held over each question; hands-free: "
                            "voice activity and the end-of-turn policy decide (virtual "
                            "audio only)")
    group.add_argument("--turn-audio", default="virtual", choices=("virtual", "memory"),
                       help="virtual: PulseAudio virtual microphone and speaker; memory: "
                            "no sound system (GPU servers), the output device's latency "
                            "is not counted")
    group.add_argument("--turn-hold-ms", type=float, default=HOLD_MS,
                       help="push-to-talk: how long the button stays held after the "
                            f"recording ends (default {HOLD_MS:.0f})")
    group.add_argument("--turn-text-model", choices=("ngram", "chat"), default=None,
                       help="hands-free: who judges the words at a pause (default: the "
                            "settings' default, audio.turn_end_text_model)")
    group.add_argument("--turn-no-speculation", action="store_true",
                       help="start the reply only after the final transcript")
    group.add_argument("--turn-neural-weight", type=float, default=None,
                       help="weight of the chat model's n-best rescoring term (default: "
                            "the settings' default; 0 turns it off)")


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _questions(engines) -> list:
    import soxr

    from voicebot.tts.base import collect

    questions = []
    for text in QUESTIONS:
        samples, rate = collect(engines.synthesizer.stream(text))
        questions.append(soxr.resample(samples, rate, 16000).astype("float32"))
    return questions


def _talk(session, say, questions: list, turns_wanted: int, hold_ms: float = HOLD_MS
          ) -> list:
    """Hold the talk button over each question (and ``hold_ms`` after it), release,
    wait for the reply."""
    records = []
    for i in range(turns_wanted):
        question = questions[i % len(questions)]
        turn = session.start_listening()
        starts = say(question)
        time.sleep(max(0.0, starts - time.monotonic()) + len(question) / 16000
                   + hold_ms / 1000)
        session.stop_listening()
        if not turn.finished.wait(120):
            raise BenchUnfinishedError(f"turn {turn.id} did not finish in 120 s")
        records.append(turn)
        time.sleep(0.2)
    return records


def speech_end_seconds(samples: np.ndarray, rate: int = 16000, below_db: float = 30.0,
                       frame_s: float = 0.010) -> float:
    """Where the speech in ``samples`` ends: the end of the last ``frame_s`` frame whose
    RMS is within ``below_db`` of the loudest frame's (the voice's trailing silence and
    breath are not speech)."""
    frame = max(1, int(rate * frame_s))
    count = len(samples) // frame
    if count == 0:
        return 0.0
    frames = np.asarray(samples[:count * frame], np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-below_db / 20))
    return (loud[-1] + 1) * frame / rate


def _talk_hands_free(session, say, questions: list, turns_wanted: int) -> list:
    """Speak each question with nobody pressing anything; per question: (end of speech,
    the turns it opened)."""
    conversation = session.conversation
    results = []
    for i in range(turns_wanted):
        question = questions[i % len(questions)]
        before = len(conversation.turns)
        starts = say(question)
        speech_end = starts + speech_end_seconds(question)
        deadline = time.monotonic() + len(question) / 16000 + 60
        # The question's turn: started by the voice activity, finished when its reply is.
        while time.monotonic() < deadline:
            opened = [t for t in conversation.turns[before:] if t.source == "voice"]
            if opened and time.monotonic() > speech_end + 0.5 and all(
                    t.finished.is_set() for t in opened):
                break
            time.sleep(0.05)
        else:
            raise BenchUnfinishedError(f"question {i + 1} got no finished turn in time")
        results.append((speech_end, opened))
        time.sleep(0.8)  # past hands-free's echo guard before the next question
    return results


def hands_free_figures(results: list) -> dict:
    """The hands-free figures from (end of speech, turns opened) per question."""
    v2v, decided = [], []
    cut_off = 0
    for speech_end, opened in results:
        cut_off += len(opened) > 1
        last = opened[-1]
        stamps = last.timing.stamps
        if "ptt_release" in stamps:
            decided.append((stamps["ptt_release"] - speech_end) * 1000)
        if "first_played" in stamps:
            v2v.append((stamps["first_played"] - speech_end) * 1000)
    figures: dict = {"questions": len(results), "cut_off": cut_off,
                     "turns_without_reply_audio": len(results) - len(v2v)}
    for name, values in (("end_of_speech_to_first_sound", v2v),
                         ("end_of_turn", decided)):
        figures[f"{name}_ms_median"] = round(statistics.median(values), 1) if values else None
        figures[f"{name}_ms_p90"] = round(_percentile(values, 0.9), 1) if values else None
    return figures


def _run_session(settings, args, turns_wanted: int, inject=None) -> tuple[list, int]:
    """The turns through a Session, as the app runs them (history not kept).

    ``inject(samples, rate)``: speaks into the microphone the settings name and returns
    when the sound starts (the virtual devices); None: in-memory audio."""
    from voicebot.audio.memory_io import MemorySpeaker, PacedMicrophone
    from voicebot.pipeline.audio_ends import AudioEnds
    from voicebot.pipeline.live_session import Session
    from voicebot.pipeline.session import load_engines

    hands_free = getattr(args, "turn_mode", "ptt") == "hands-free"
    if hands_free and inject is None:
        raise ValueError("hands-free turns need the virtual devices (--turn-audio virtual): "
                         "a turn ends on silence, which only a running microphone delivers")
    settings.audio.hands_free = hands_free  # else the bench holds the talk button
    engines = load_engines(settings, device=args.turn_device)
    questions = _questions(engines)
    session = Session(settings, loads_models=False, persist=False)
    try:
        if inject is None:
            mic = PacedMicrophone(16000)
            session.start(engines, AudioEnds(mic=mic.ring, speaker=MemorySpeaker()))

            def say(question) -> float:
                mic.say(question)
                return time.monotonic()
        else:
            session.start(engines)

            def say(question) -> float:
                return inject(question, 16000)
        if not session.can_talk:
            raise BenchUnfinishedError(f"no microphone to talk into: {session.shown.status}")
        if hands_free:
            records = _talk_hands_free(session, say, questions, turns_wanted)
        else:
            hold_ms = getattr(args, "turn_hold_ms", HOLD_MS)
            records = _talk(session, say, questions, turns_wanted, hold_ms)
        capture = session.capture
        return records, capture.input_overflows if capture is not None else 0
    finally:
        session.close()


def _run_virtual(settings, args, turns_wanted: int) -> tuple[list, int]:
    from voicebot.audio.virtual_device import VirtualAudio

    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    with VirtualAudio() as audio:
        return _run_session(settings, args, turns_wanted, inject=audio.inject)


def _speculation(turns: list) -> dict:
    """How often the reply started on the guess was kept or had to start again."""
    return {outcome: sum(1 for t in turns if t.speculated == outcome)
            for outcome in ("kept", "restarted")}


def run(args: argparse.Namespace) -> dict:
    from voicebot.settings import Settings

    settings = Settings()
    settings.chat.speculative_start = not getattr(args, "turn_no_speculation", False)
    if getattr(args, "turn_neural_weight", None) is not None:
        settings.asr.neural_weight = args.turn_neural_weight
    if getattr(args, "turn_text_model", None) is not None:
        settings.audio.turn_end_text_model = args.turn_text_model
    turns_wanted = max(1, args.turn_count)
    runner = _run_session if args.turn_audio == "memory" else _run_virtual
    records, overflows = runner(settings, args, turns_wanted)
    if args.turn_mode == "hands-free":
        result = {"mode": "hands-free", "device": args.turn_device, "audio": args.turn_audio,
                  **hands_free_figures(records),
                  "recognised": [[t.user_text for t in opened]
                                 for _, opened in records[:len(QUESTIONS)]],
                  "speculation": _speculation([t for _, opened in records for t in opened]),
                  "input_overflows": overflows, "rss_mb_peak": round(_rss_peak_mb(), 1)}
        return result

    result: dict = {"turns": len(records), "mode": "ptt", "device": args.turn_device,
                    "audio": args.turn_audio}
    for stage in STAGES:
        values = [t.timing.breakdown()[stage] for t in records
                  if stage in t.timing.breakdown()]
        if values:
            result[f"{stage.removesuffix('_ms')}_ms_median"] = round(statistics.median(values),
                                                                       1)
    v2v = [t.timing.breakdown()["voice_to_voice_ms"] for t in records
           if "voice_to_voice_ms" in t.timing.breakdown()]
    result["v2v_ms_median"] = round(statistics.median(v2v), 1) if v2v else None
    result["v2v_ms_p90"] = round(_percentile(v2v, 0.9), 1) if v2v else None
    result["turns_without_reply_audio"] = len(records) - len(v2v)
    result["speculation"] = _speculation(records)
    result["recognised"] = [t.user_text for t in records[:len(QUESTIONS)]]
    result["input_overflows"] = overflows
    result["rss_mb_peak"] = round(_rss_peak_mb(), 1)
    return result
