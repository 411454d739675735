"""Streaming resampling (soxr) between a device's rate and the rates the app works at."""

from __future__ import annotations

import atexit
import weakref

import numpy as np
import soxr

ASR_RATE = 16_000  # what the recognisers and the live plots consume
TRAINING_RATE = 22_050  # what the voice-training recordings are stored at

_live: weakref.WeakSet[StreamResampler] = weakref.WeakSet()


@atexit.register
def _release_streams() -> None:
    # soxr's nanobind extension prints "leaked instances" warnings when its objects are
    # still alive as the interpreter shuts down (a capture kept by a widget, say).
    for resampler in list(_live):
        resampler._stream = None


class StreamResampler:
    """Mono float32 resampling of a stream that arrives in pieces of any size.

    soxr keeps the filter state between pieces, so the output equals resampling the whole
    signal at once (no clicks or gaps at piece boundaries). When the rates are equal it
    passes the samples through untouched.
    """

    def __init__(self, in_rate: float, out_rate: float, quality: str = "HQ") -> None:
        self.in_rate = float(in_rate)
        self.out_rate = float(out_rate)
        self._stream = (None if self.in_rate == self.out_rate
                        else soxr.ResampleStream(self.in_rate, self.out_rate, 1,
                                                 dtype="float32", quality=quality))
        _live.add(self)

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            if self.in_rate != self.out_rate:
                raise RuntimeError("the resampler was released at interpreter exit")
            return samples
        return self._stream.resample_chunk(samples, last=last)

    def flush(self) -> np.ndarray:
        """The samples still inside the filter (call once, at the end of the stream)."""
        return self.process(np.zeros(0, np.float32), last=True)
