"""A preallocated, lock-free ring buffer of audio frames for one writer and its readers.

The writer is usually a PortAudio callback, which must not allocate, lock or block: a
write is two slice copies into memory allocated up front. Every frame is stored twice, at
``i`` and ``i + capacity`` (a 2N buffer), so the newest ``n <= capacity`` frames are always
one contiguous slice: :meth:`RingBuffer.latest` returns a view, never a copy, which is what
a display timer wants for "the last 5 seconds".

Readers do not share a read position. Each :class:`RingReader` keeps its own cursor into
the ever-growing frame count, so a waveform display and a recogniser can both consume the
same capture without stealing frames from each other. A reader that falls more than
``capacity`` frames behind has lost audio; it skips to the oldest frame still held and
counts the loss in ``dropped_frames`` rather than returning overwritten data.

Thread safety: the writer updates ``frames_written`` only after the data is in place, and
a reader checks the count again after copying to detect a writer that lapped it mid-copy.
A write in progress is not counted yet, so the writer first announces how far it will
write (``write_end``) and readers treat frames that far back as already overwritten.
Python's GIL makes each integer update atomic.
"""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """``capacity`` frames written by exactly one thread.

    With ``channels=None`` (mono) a frame is one sample and reads return 1-D arrays;
    otherwise frames are rows of ``channels`` samples.
    """

    def __init__(self, capacity: int, channels: int | None = None,
                 dtype: np.dtype | type = np.float32, sample_rate: int | None = None) -> None:
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.channels = channels
        # The rate of the audio it holds, when the writer says (a reader of a microphone
        # ring can then check it is the rate it expects).
        self.sample_rate = sample_rate
        shape = (2 * self.capacity,) if channels is None else (2 * self.capacity, channels)
        self._data = np.zeros(shape, dtype=dtype)
        # Total frames ever written. Only the writer changes it, after the data is stored.
        self.frames_written = 0
        # Frames the writer had to drop because a single write was larger than the buffer.
        self.writer_dropped = 0
        # Where the write in progress (if any) ends; equals frames_written between writes.
        self.write_end = 0

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (1-D when mono, else frames x channels). Never allocates."""
        n = len(block)
        if n == 0:
            return
        self.write_end = self.frames_written + n  # announce before touching the data
        if n > self.capacity:  # only the newest `capacity` frames can be kept
            self.writer_dropped += n - self.capacity
            self.frames_written += n - self.capacity
            block = block[n - self.capacity:]
            n = self.capacity
        cap = self.capacity
        start = self.frames_written % cap
        first = min(n, cap - start)
        data = self._data
        data[start:start + first] = block[:first]
        data[start + cap:start + cap + first] = block[:first]
        rest = n - first
        if rest:
            data[:rest] = block[first:]
            data[cap:cap + rest] = block[first:]
        self.frames_written += n

    def latest(self, n: int) -> np.ndarray:
        """A view of the newest ``n`` frames (fewer at the start), oldest first.

        The view aliases the buffer: the writer will overwrite it, so use it at once (draw
        it, copy it) and do not keep it.
        """
        n = min(int(n), self.capacity, self.frames_written)
        end = self.frames_written % self.capacity + self.capacity
        return self._data[end - n:end]

    def reader(self, from_start: bool = False) -> RingReader:
        """A new reader starting at the newest frame (or the oldest one still held)."""
        return RingReader(self, from_start=from_start)


class RingReader:
    """One consumer's position in a :class:`RingBuffer`."""

    def __init__(self, ring: RingBuffer, from_start: bool = False) -> None:
        self.ring = ring
        written = ring.frames_written
        self.position = max(0, written - ring.capacity) if from_start else written
        self.dropped_frames = 0

    @property
    def available(self) -> int:
        return self.ring.frames_written - self.position

    def skip_to_end(self) -> None:
        self.position = self.ring.frames_written

    def read(self, max_frames: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Copy out the frames not read yet (at most ``max_frames``), oldest first.

        With ``out`` (a preallocated array shaped like the frames) the frames are copied into
        its head and that slice is returned, so a steady consumer need not allocate.
        """
        ring = self.ring
        cap = ring.capacity
        written = ring.frames_written
        oldest_safe = ring.write_end - cap
        if self.position < oldest_safe:
            self.dropped_frames += oldest_safe - self.position
            self.position = oldest_safe
        n = written - self.position
        if max_frames is not None:
            n = min(n, int(max_frames))
        if out is not None:
            n = min(n, len(out))
        start = self.position % cap
        src = ring._data[start:start + n]
        if out is None:
            result = src.copy()
        else:
            result = out[:n]
            np.copyto(result, src)
        # If the writer lapped us while copying, the oldest part was overwritten: drop it.
        lapped = ring.write_end - cap - self.position
        if lapped > 0:
            lost = min(lapped, n)
            self.dropped_frames += lost
            result = result[lost:]
        self.position += n
        return result
