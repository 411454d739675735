"""``voicebot bench adapt --json``: the whole voice-adaptation path on the stand-in user.

1. The stand-in user (``voicebot.training.stand_in_user``: hibari's bundled voice reading
   the prompt set, checked and stored like recorded takes) gives ``--adapt-minutes`` of
   speech, in prompt order, as a voice dataset folder.
2. ``voicebot train tts --data D --out O`` runs as its own process, exactly as the
   Training tab starts it. With a trainer that builds a base voice (``--base-minutes``,
   ``--base-steps``; progress lines carry ``"phase": "base" | "fine-tune"``) the times to
   the base and to the adapted voice are read from its progress lines; the trainer holds
   out a tenth of the takes itself (``heldout.json``), the ones scored below. The trainer
   caches the base it builds as the machine's base, so a reduced (or ``--adapt-fresh-
   base``) base is built in the work folder under a private ``VOICEBOT_HOME`` instead:
   a benchmark's small base never becomes what a user's training fine-tunes. Without
   those options the machine's cached base is used (or built, once, in full).
   ``time_to_base_s`` and ``time_to_adapted_s`` count from the trainer's launch (the
   takes are the user's recordings, not part of the wait).
3. The adapted voice (``load_voice(run folder)``) and the base voice are scored on the
   held-out takes' sentences (``voicebot.training.voice_scores``): ``roundtrip_wer``,
   ``similarity`` to the user's held-out takes and ``base_similarity``. When no
   Tacotron2 base exists yet, the base is the embedded Piper voice, the teacher every
   Piper-taught base imitates (``base_voice`` in the result says which).
4. The adapted voice's speed on the CPU, as the conversation runs it (ONNX engine,
   ``--adapt-tts-threads``): ``first_audio_ms`` for a one-sentence reply and ``rtf``
   (Tacotron2 decoder + HiFi-GAN, synthesis time / audio time) for a paragraph.

``--adapt-time-budget-s`` bounds the whole run: the trainer is asked to stop (SIGTERM:
it saves a checkpoint and exits) when the budget minus the time scoring needs is spent,
and the voice is scored as it is then. An untrained decoder's stop token may never fire,
so every sentence is cut at ``DECODE_CAP`` times its expected length (``stopped`` counts
the sentences whose decoder ended on its own); the speed figures decode each sentence to
exactly its expected length, so an early or missing stop does not distort them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from voicebot.bench_error import BenchUnfinishedError

# Scoring on the CPU, measured on 2 busy cores: 12 held-out sentences x 2 voices (an
# untrained decoder running to its cap) took 79 s, loading both voices (ONNX export
# included) 8-23 s, the speed figures ~20 s.
SCORING_RESERVE_S = 180.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("adapt benchmark")
    group.add_argument("--adapt-minutes", type=float, default=10.0,
                       help="minutes of the stand-in user's speech (the prompt set has ~10)")
    group.add_argument("--adapt-base-minutes", type=float,
                       help="minutes of Piper-taught speech for the base voice (trainer "
                            "default when not given)")
    group.add_argument("--adapt-base-steps", type=int, help="base voice training steps")
    group.add_argument("--adapt-steps", type=int, help="fine-tuning steps on the user's takes")
    group.add_argument("--adapt-batch-size", type=int, help="takes per training step")
    group.add_argument("--adapt-device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="training device (scoring and the speed figures run on the CPU)")
    group.add_argument("--adapt-time-budget-s", type=float,
                       help="stop training so that the whole run ends within this")
    group.add_argument("--adapt-scoring-reserve-s", type=float, default=SCORING_RESERVE_S,
                       help="of the time budget, what scoring and the speed figures keep "
                            "(default %(default)s s: 12 held-out sentences took ~120 s on 2 "
                            "busy cores)")
    group.add_argument("--adapt-threads", type=int, help="torch CPU threads for training")
    group.add_argument("--adapt-tts-threads", type=int, default=1,
                       help="CPU threads of the adapted voice for first_audio_ms and rtf")
    group.add_argument("--adapt-work", type=Path,
                       help="folder for the dataset and the run (default: a temporary one, "
                            "removed afterwards)")
    group.add_argument("--adapt-fresh-base", action="store_true",
                       help="build a base voice in the work folder even when the machine "
                            "has one cached (implied by --adapt-base-minutes/-steps)")


# ----- the trainer's flags --------------------------------------------------------------
def trainer_options() -> set[str]:
    """The option strings ``voicebot train tts`` accepts now (read from its parser)."""
    from voicebot.training.cli import option_strings

    return option_strings("tts")


def train_command(data: Path, out: Path, args, options: set[str]) -> list[str]:
    command = [sys.executable, "-m", "voicebot", "train", "tts", "--data", str(data),
               "--out", str(out), "--device", args.adapt_device, "--no-preview",
               "--checkpoint-every", "1000000", "--seed", "0"]
    wanted = [("--max-steps", args.adapt_steps), ("--batch-size", args.adapt_batch_size),
              ("--threads", args.adapt_threads), ("--base-minutes", args.adapt_base_minutes),
              ("--base-steps", args.adapt_base_steps)]
    for flag, value in wanted:
        if value is None:
            continue
        if flag not in options:
            raise SystemExit(f"voicebot train tts has no {flag} yet; leave out the matching "
                             "--adapt- option")
        command += [flag, str(value)]
    return command


def isolated_base(args) -> bool:
    """A reduced or fresh base is built under the work folder: the trainer caches the
    base it builds as the machine's base, and a benchmark's small one must never become
    what a user's training then fine-tunes."""
    return bool(args.adapt_fresh_base or args.adapt_base_minutes is not None
                or args.adapt_base_steps is not None)


def trainer_env(work: Path, isolated: bool) -> dict:
    from voicebot.paths import HOME_ENV, MODELS_ENV, user_dirs

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if isolated:
        # A private home for the base and its teacher corpus; the models (Piper, the
        # vocoder, their conversions) stay shared.
        env.update({HOME_ENV: str(work / "home"), MODELS_ENV: str(user_dirs().models)})
    return env


# ----- held-out takes -------------------------------------------------------------------
def write_subset(source, take_ids: list[str], folder: Path):
    """A dataset folder holding only ``take_ids`` of ``source`` (wavs hard-linked)."""
    from voicebot.training.dataset import VoiceDataset

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wavs").mkdir(exist_ok=True)
    subset = VoiceDataset(folder)
    for take_id in take_ids:
        wav, target = source.wav_path(take_id), folder / "wavs" / f"{take_id}.wav"
        if not target.exists():
            try:
                os.link(wav, target)
            except OSError:  # another file system
                shutil.copy2(wav, target)
        subset.takes[take_id] = source.takes[take_id]
    subset.save()
    return subset


# ----- training -------------------------------------------------------------------------
class TrainerRun:
    """The training process, its progress events and the times of its phases."""

    def __init__(self, command: list[str], deadline: float | None,
                 env: dict | None = None) -> None:
        self.command = command
        self.deadline = deadline
        self.env = env
        self.events: list[dict] = []
        self.stopped_for_time = False
        self.stderr_tail = ""

    def run(self) -> int:
        from voicebot.training.progress import parse_line

        proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.env)
        tail: list[str] = []

        def read_stderr() -> None:
            for line in proc.stderr:
                tail.append(line)
                del tail[:-40]

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        watchdog = threading.Thread(target=self._watch, args=(proc,), daemon=True)
        watchdog.start()
        previous = _exit_on_sigterm()
        try:
            for line in proc.stdout:
                event = parse_line(line)
                if event:
                    self.events.append(event)
                    _log_event(event)
            code = proc.wait()
        finally:
            _restore_sigterm(previous)
            if proc.poll() is None:  # the bench was stopped: its trainer must not live on
                stop_trainer(proc)
        reader.join(timeout=5)
        self.stderr_tail = "".join(tail)
        return code

    def _watch(self, proc: subprocess.Popen) -> None:
        if self.deadline is None:
            return
        while proc.poll() is None:
            if time.time() >= self.deadline:
                self.stopped_for_time = True
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)  # the trainer saves, then exits
                return
            time.sleep(1.0)

    def first(self, name: str, **match) -> dict | None:
        return next((e for e in self.events if e["event"] == name
                     and all(e.get(k) == v for k, v in match.items())), None)

    def last(self, name: str) -> dict | None:
        return next((e for e in reversed(self.events) if e["event"] == name), None)

    def end(self) -> dict | None:
        """The run's last ``done`` or ``cancelled`` (a base phase has its own before)."""
        return next((e for e in reversed(self.events)
                     if e["event"] in ("done", "cancelled")), None)


def stop_trainer(proc: subprocess.Popen, grace_s: float = 60.0) -> None:
    """SIGTERM (the trainer saves and exits), then SIGKILL after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _exit_on_sigterm():
    """Turn SIGTERM into SystemExit while the trainer runs, so that stopping the bench
    stops its trainer too (the ``finally`` above); None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _log_event(event: dict) -> None:
    """A short line on stderr per step/phase, so a long run shows it is alive."""
    if event["event"] == "step" and event.get("step", 0) % 25:
        return
    if event["event"] == "corpus" and event.get("done") != event.get("total"):
        return  # the teacher corpus reports every sentence
    keep = {k: event[k] for k in ("event", "phase", "step", "eta_s", "total_eta_s", "minutes",
                                  "message") if k in event}
    print(json.dumps(keep), file=sys.stderr, flush=True)


def phase_times(run: TrainerRun, started: float) -> dict:
    """time_to_base_s (None when no base was built: a cached or installed one was used,
    or the trainer has no base phase) and time_to_adapted_s, both from the launch."""
    fine = run.first("start", phase="fine-tune")
    built = any(e.get("phase") == "base" for e in run.events)
    end = run.end()
    return {"time_to_base_s": round(fine["time"] - started, 1) if built and fine else None,
            "base_built": built,
            "time_to_adapted_s": round(end["time"] - started, 1) if end else None}


def base_of(run: TrainerRun) -> Path | None:
    """The base checkpoint folder the fine-tune started from (its start event says)."""
    start = run.first("start", phase="fine-tune") or run.first("start") or {}
    base = start.get("base")
    if base and base not in ("scratch", "resumed"):
        path = Path(base)
        folder = path if path.is_dir() else path.parent
        if (folder / "model_file.pth").is_file():
            return folder
    return None


# ----- scoring and speed ---------------------------------------------------------------
def speed_on_cpu(voice, args) -> dict:
    """first_audio_ms (one sentence) and rtf (a paragraph) of the loaded voice, each
    sentence decoded to its expected length whatever the stop token says."""
    from voicebot.training.voice_scores import BoundedVoice
    from voicebot.tts.bench import ONE_SENTENCE, PARAGRAPH, measure_stream

    bounded = BoundedVoice(voice, factor=1.0, never_stop=True)
    one = measure_stream(bounded, ONE_SENTENCE, 3)
    paragraph = measure_stream(bounded, PARAGRAPH, 2)
    return {"first_audio_ms": one["first_audio_ms"], "rtf": paragraph["rtf"],
            "first_audio_cpu_ms": one["first_audio_cpu_ms"], "rtf_cpu": paragraph["rtf_cpu"],
            "speed_audio_s": paragraph["audio_s"], "tts_threads": args.adapt_tts_threads}


def score(run_folder: Path, data: Path, heldout: list[str], base: str, args) -> dict:
    import torch

    from voicebot.training import voice_scores
    from voicebot.tts.voices import VoiceOptions, load_voice

    torch.set_num_threads(max(1, args.adapt_tts_threads))
    sentences, wavs = voice_scores.heldout_material(data, heldout)
    options = VoiceOptions(device="cpu", threads=args.adapt_tts_threads)
    started = time.perf_counter()
    adapted = voice_scores.BoundedVoice(load_voice(str(run_folder), options))
    load_s = time.perf_counter() - started
    base_voice = voice_scores.BoundedVoice(load_voice(base, options))
    scores = voice_scores.score_voices(
        {"adapted": voice_scores.synthesizer_function(adapted),
         "base": voice_scores.synthesizer_function(base_voice)}, sentences, wavs)
    result = {"roundtrip_wer": _r(scores["adapted"].roundtrip_wer),
              "similarity": _r(scores["adapted"].similarity),
              "base_similarity": _r(scores["base"].similarity),
              "base_roundtrip_wer": _r(scores["base"].roundtrip_wer),
              "verdict": voice_scores.describe(scores["adapted"], scores["base"]),
              "heldout_sentences": len(sentences),
              "stopped": f"{adapted.stopped}/{adapted.sentences}",
              "voice_load_s": round(load_s, 1),
              "heard": [s.heard for s in scores["adapted"].sentences],
              "base_heard": [s.heard for s in scores["base"].sentences],
              "scoring_s": round(scores["adapted"].seconds + scores["base"].seconds, 1)}
    result.update(speed_on_cpu(adapted.voice, args))
    return result


def _r(value):
    return None if value is None else round(float(value), 4)


# ----- the benchmark --------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict:
    from voicebot.training.stand_in_user import build_stand_in, take_ids
    from voicebot.training.voice_scores import heldout_ids

    started = time.time()
    deadline = (started + args.adapt_time_budget_s - args.adapt_scoring_reserve_s
                if args.adapt_time_budget_s else None)
    work = Path(args.adapt_work) if args.adapt_work else Path(
        tempfile.mkdtemp(prefix="voicebot-bench-adapt-"))
    try:
        # Stand-in takes (cached in the user cache dir): a little more than asked, so the
        # training share is the minutes asked for once a tenth is held out.
        stand_in = build_stand_in(minutes=args.adapt_minutes / 0.9)
        chosen = take_ids(stand_in, minutes=args.adapt_minutes / 0.9)
        options = trainer_options()
        data = work / "data"
        dataset = write_subset(stand_in, chosen, data)
        out = work / "run"
        command = train_command(data, out, args, options)
        isolated = isolated_base(args)
        trainer = TrainerRun(command, deadline, trainer_env(work, isolated))
        train_started = time.time()
        code = trainer.run()
        if code != 0 or not (out / "model_file.pth").is_file():
            error = trainer.last("error")
            if trainer.stopped_for_time and not trainer.first("start", phase="fine-tune"):
                raise BenchUnfinishedError("the time budget ran out while the base voice was being "
                                   "built: give a larger --adapt-time-budget-s or a smaller "
                                   "--adapt-base-minutes / --adapt-base-steps")
            raise BenchUnfinishedError(f"training failed ({code}): "
                               f"{error['message'] if error else trainer.stderr_tail[-1500:]}")
        # The takes the trainer never trained on (every 10th, voicebot.training.heldout).
        heldout = heldout_ids(out)
        base_path = base_of(trainer)
        base = str(base_path) if base_path else "piper-en-us-joe-medium"
        start_event = trainer.first("start", phase="fine-tune") or trainer.first("start") or {}
        base_done = next((e for e in reversed(trainer.events) if e["event"] == "done"
                          and e.get("phase") == "base"), {})
        used = [t for t in dataset.takes.values() if t.id not in heldout]
        result = {
            "minutes_of_speech": round(sum(t.duration_s for t in used) / 60, 2),
            "train_takes": len(used), "heldout_takes": len(heldout),
            **phase_times(trainer, train_started),
            "device": start_event.get("device"), "precision": start_event.get("precision"),
            "steps": (trainer.end() or {}).get("step"),
            "base_steps": base_done.get("step"),
            "stopped_for_time": trainer.stopped_for_time,
            "base_voice": (str(base_path) if base_path else
                           f"{base} (the teacher: the trainer used no Tacotron2 base)"),
            "base_isolated": isolated,
        }
        if base_path and (base_path / "base.json").is_file():
            # What the base was built from (also when a cached one was reused).
            marker = json.loads((base_path / "base.json").read_text(encoding="utf-8"))
            result["base_recipe"] = {k: marker.get(k) for k in
                                     ("minutes", "sentences", "steps", "batch_size", "r")}
        for name, phase in (("base", "base"), ("", "fine-tune")):
            last = next((e for e in reversed(trainer.events)
                         if e["event"] == "step" and e.get("phase") == phase), {})
            prefix = f"{name}_" if name else ""
            result[f"{prefix}final_loss"] = (last.get("losses") or {}).get("loss")
            # How diagonal the attention is (0-1, above 0.5 aligned: training.alignment).
            result[f"{prefix}align_score"] = last.get("align_score")
        try:
            result.update(score(out, stand_in.folder, heldout, base, args))
        finally:
            if not args.adapt_work:
                forget_export(out)
                if isolated and base_path:
                    forget_export(base_path)
        result["total_s"] = round(time.time() - started, 1)
        result["command"] = " ".join(command[1:])
        return result
    finally:
        if not args.adapt_work:
            shutil.rmtree(work, ignore_errors=True)


def forget_export(run_folder: Path) -> None:
    """Remove the ONNX export of a temporary run's voice (~137 MB in the models folder's
    conversion cache, keyed by the checkpoint's path, which no later run reuses)."""
    from voicebot.models.conversions import conversion_dir
    from voicebot.tts.coqui_checkpoint import find_checkpoint
    from voicebot.tts.tacotron_onnx import _conversion_id  # the id load_voice used

    with contextlib.suppress(Exception):
        folder = conversion_dir(_conversion_id("tacotron2", find_checkpoint(run_folder)),
                                "onnx").parent
        shutil.rmtree(folder, ignore_errors=True)
