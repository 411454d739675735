"""`voicebot bench asr`: how fast the Whisper recogniser is, as JSON.

- ``rtf_final``: decode time / audio time for whole utterances fed in one block and
  decoded greedily (no streaming help), over the pocketsphinx test recordings.
- ``rtf_nbest5``: the same with 5-beam search returning 5 hypotheses.
- ``final_after_release_ms``: audio fed in 20 ms chunks at real-time pace, with
  streaming partial decodes; the time ``finish(5)`` takes after the last chunk, for the
  ~3 s utterances (median).
- ``partial_interval_ms``: wall-clock time between partial results during that feeding
  (median).
- ``final_after_release_cpu_ms``: the CPU time of that final step (one thread),
  i.e. what the wall time is when nothing else competes for the cores.
Run it on a quiet machine: on 2 cores anything else running changes the numbers
(``load_average`` is reported alongside).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import numpy as np

from voicebot.audio.resample import ASR_RATE

CHUNK = 320  # 20 ms at 16 kHz


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--asr-model", default="whisper-tiny-en",
                        help="asr: Whisper model id to benchmark")
    parser.add_argument("--asr-device", default="auto", help="asr: auto, cpu or cuda")
    parser.add_argument("--asr-repeats", type=int, default=2,
                        help="asr: repetitions of each measurement (best kept for rtf)")


def _rtf(model, clips, nbest: int, repeats: int) -> float:
    from voicebot.asr.whisper_engine import WhisperRecognizer

    recognizer = WhisperRecognizer(model, nbest=nbest, streaming=False)
    best = float("inf")
    for _ in range(repeats):
        spent = 0.0
        for audio in clips:
            started = time.perf_counter()
            recognizer.feed(audio)
            recognizer.finish(nbest)
            spent += time.perf_counter() - started
        best = min(best, spent)
    return best / (sum(len(a) for a in clips) / ASR_RATE)


def _streamed(model, audio: np.ndarray) -> tuple[float, float, list[float]]:
    from voicebot.asr.whisper_engine import WhisperRecognizer

    stamps: list[float] = []
    recognizer = WhisperRecognizer(model, nbest=5,
                                   on_partial=lambda p: stamps.append(time.perf_counter()))
    start = time.perf_counter()
    for i in range(0, len(audio), CHUNK):
        # Real-time pace: wait until this chunk would have been captured.
        due = start + (i + CHUNK) / ASR_RATE
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        recognizer.feed(audio[i:i + CHUNK])
    released, released_cpu = time.perf_counter(), time.thread_time()
    recognizer.finish(5)
    return ((time.perf_counter() - released) * 1000,
            (time.thread_time() - released_cpu) * 1000,
            [(b - a) * 1000 for a, b in itertools.pairwise(stamps)])


def run(args: argparse.Namespace) -> dict:
    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import pocketsphinx_testdata
    from voicebot.asr.whisper_engine import load_whisper

    utterances = pocketsphinx_testdata()
    if not utterances:
        raise SystemExit("bench asr needs Debian's pocketsphinx-testdata recordings")
    model_id = getattr(args, "asr_model", "whisper-tiny-en")
    repeats = max(1, getattr(args, "asr_repeats", 2))
    started = time.perf_counter()
    model = load_whisper(model_id, getattr(args, "asr_device", "auto"))
    load_seconds = time.perf_counter() - started
    clips = [read_audio_file(u.audio) for u in utterances]
    three_second = [a for a in clips if 2.5 * ASR_RATE <= len(a) <= 3.6 * ASR_RATE]

    rtf_final = _rtf(model, clips, 1, repeats)
    rtf_nbest5 = _rtf(model, clips, 5, repeats)
    finals, finals_cpu, intervals = [], [], []
    for _ in range(repeats):
        for audio in three_second:
            final_ms, final_cpu_ms, gaps = _streamed(model, audio)
            finals.append(final_ms)
            finals_cpu.append(final_cpu_ms)
            intervals += gaps
    return {
        "model": model_id,
        "device": str(model.device),
        "runtime": type(model).__name__,  # OnnxWhisperModel on the CPU
        "threads": _threads(model),
        "audio_seconds": round(sum(len(a) for a in clips) / ASR_RATE, 2),
        "n_utts": len(clips),
        "load_seconds": round(load_seconds, 2),
        "rtf_final": round(rtf_final, 4),
        "rtf_nbest5": round(rtf_nbest5, 4),
        "final_after_release_ms": round(statistics.median(finals), 1),
        "final_after_release_ms_max": round(max(finals), 1),
        # CPU time of the same work: what the wall time would be on an idle machine
        # (one thread here), useful when the 2 cores are shared.
        "final_after_release_cpu_ms": round(statistics.median(finals_cpu), 1),
        "final_after_release_utts_s": [round(len(a) / ASR_RATE, 2) for a in three_second],
        "partial_interval_ms": round(statistics.median(intervals), 1) if intervals else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _threads(model) -> int:
    """The recogniser's intra-op threads (the ONNX model's own; torch's process-wide)."""
    if getattr(model, "threads", None):
        return model.threads
    import torch

    return torch.get_num_threads()
