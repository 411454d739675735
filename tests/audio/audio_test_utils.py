"""Helpers shared by the audio tests: real speech and alignment by cross-correlation."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data")
SPEECH_FILE = SPEECH_DIR / "cards" / "001.wav"  # "two of clubs..." style utterance, 16 kHz


def best_correlation(captured: np.ndarray, source: np.ndarray) -> tuple[float, int]:
    """Normalised correlation of ``source`` with its best-aligned stretch of ``captured``.

    Returns (correlation, offset of the source's start in ``captured``).
    """
    n = len(source)
    if len(captured) < n:
        return 0.0, 0
    size = 1 << (len(captured) + n).bit_length()
    xcorr = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(source, size)),
                         size)[:len(captured) - n + 1]
    offset = int(np.argmax(np.abs(xcorr)))
    segment = captured[offset:offset + n]
    denom = np.linalg.norm(segment) * np.linalg.norm(source)
    return (float(np.dot(segment, source) / denom) if denom else 0.0), offset


def wait_for(condition, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def retained_allocations(work, module_file: str) -> int:
    """Bytes still allocated after ``work()`` by code running inside ``module_file``.

    Filtering by module keeps other threads (the virtual device's feeder) out of it.
    """
    tracemalloc.start(25)
    try:
        before = tracemalloc.take_snapshot()
        result = work()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    del result
    only_module = [tracemalloc.Filter(True, module_file, all_frames=True)]
    diff = after.filter_traces(only_module).compare_to(before.filter_traces(only_module),
                                                       "filename")
    return sum(stat.size_diff for stat in diff)
