"""`voicebot bench turn`: spoken turns through the virtual audio devices, end to end.

Each turn: the question is spoken into the virtual microphone while the talk button is
held, released, and the clock runs until the first reply sample reaches the virtual
speaker (voice to voice). The questions are synthesised once by the embedded voice.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from voicebot.pipeline.timing import STAGES

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
    group.add_argument("--turn-audio", default="virtual", choices=("virtual", "memory"),
                       help="virtual: PulseAudio virtual microphone and speaker; memory: "
                            "no sound system (GPU servers), the output device's latency "
                            "is not counted")


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


def _talk(session, say, questions: list, turns_wanted: int) -> list:
    """Hold the talk button over each question, release, wait for the reply."""
    records = []
    for i in range(turns_wanted):
        question = questions[i % len(questions)]
        turn = session.start_listening()
        starts = say(question)
        time.sleep(max(0.0, starts - time.monotonic()) + len(question) / 16000 + 0.2)
        session.stop_listening()
        if not turn.finished.wait(120):
            raise RuntimeError(f"turn {turn.id} did not finish in 120 s")
        records.append(turn)
        time.sleep(0.2)
    return records


def _run_session(settings, args, turns_wanted: int, inject=None) -> tuple[list, int]:
    """The turns through a Session, as the app runs them (history not kept).

    ``inject(samples, rate)``: speaks into the microphone the settings name and returns
    when the sound starts (the virtual devices); None: in-memory audio."""
    from voicebot.audio.memory_io import MemorySpeaker, PacedMicrophone
    from voicebot.pipeline.audio_ends import AudioEnds
    from voicebot.pipeline.live_session import Session
    from voicebot.pipeline.session import load_engines

    settings.audio.hands_free = False  # the bench holds the talk button
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
            raise RuntimeError(f"no microphone to talk into: {session.shown.status}")
        records = _talk(session, say, questions, turns_wanted)
        capture = session.capture
        return records, capture.input_overflows if capture is not None else 0
    finally:
        session.close()


def _run_virtual(settings, args, turns_wanted: int) -> tuple[list, int]:
    from voicebot.audio.virtual_device import VirtualAudio

    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    with VirtualAudio() as audio:
        return _run_session(settings, args, turns_wanted, inject=audio.inject)


def run(args: argparse.Namespace) -> dict:
    from voicebot.settings import Settings

    settings = Settings()
    turns_wanted = max(1, args.turn_count)
    runner = _run_session if args.turn_audio == "memory" else _run_virtual
    records, overflows = runner(settings, args, turns_wanted)

    result: dict = {"turns": len(records), "device": args.turn_device,
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
    result["recognised"] = [t.user_text for t in records[:len(QUESTIONS)]]
    result["input_overflows"] = overflows
    result["rss_mb_peak"] = round(_rss_peak_mb(), 1)
    return result
