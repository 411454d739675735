"""Microphone and speaker stand-ins for machines without sound: GPU servers, containers.

``voicebot bench turn --turn-audio memory`` uses them to time the models alone where no
audio device exists. The microphone is a ring buffer filled at the real-time rate by a
thread; the speaker "plays" at the real-time rate and stamps the first sample when it is
handed over, so the device's own output latency (tens of milliseconds on a real sound
card) is not in the figures. Like the Player, the speaker can be paused: queued audio
waits (and still counts as playing) until ``resume()``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from voicebot.audio.resample import ASR_RATE
from voicebot.audio.ring_buffer import RingBuffer

BLOCK_S = 0.02  # what a sound card hands over per callback, roughly


class PacedMicrophone:
    """A 16 kHz (or any rate) ring buffer that ``say()`` fills as a real microphone would."""

    def __init__(self, rate: int = ASR_RATE, seconds: float = 30.0) -> None:
        self.rate = rate
        self.ring = RingBuffer(int(rate * seconds), sample_rate=rate)

    def say(self, samples: np.ndarray) -> threading.Thread:
        """Write ``samples`` block by block at the real-time rate, in the background."""
        def feed() -> None:
            block = max(1, int(self.rate * BLOCK_S))
            started = time.monotonic()
            for i in range(0, len(samples), block):
                self.ring.write(np.asarray(samples[i:i + block], dtype=np.float32))
                delay = started + (i + block) / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

        thread = threading.Thread(target=feed, name="paced-mic", daemon=True)
        thread.start()
        return thread


class MemorySpeaker:
    """The parts of ``voicebot.audio.player.Player`` a conversation uses, without a device."""

    def __init__(self) -> None:
        self.first_sample_time: float | None = None
        self._in_utterance = False
        self._done_at = 0.0
        self._paused_left: float | None = None  # seconds still queued when paused
        self.samples_played = 0
        self.written_s = 0.0  # seconds queued in all (the Player's running total)
        self.pauses = 0
        # play() runs on the speech thread, pause()/resume() on the conversation's: one
        # lock so that no queued second is lost between them.
        self._lock = threading.Lock()

    @property
    def output_latency(self) -> float:
        return 0.0

    @property
    def playing(self) -> bool:
        if self._paused_left is not None:
            return self._paused_left > 0
        return time.monotonic() < self._done_at

    @property
    def paused(self) -> bool:
        return self._paused_left is not None

    @property
    def played_s(self) -> float:
        """Of ``written_s``, the seconds played (or dropped by stop()), as the Player's."""
        with self._lock:
            left = self._paused_left if self._paused_left is not None else \
                max(0.0, self._done_at - time.monotonic())
            return self.written_s - left

    def play(self, chunk: np.ndarray, rate: float, last: bool = False) -> None:
        now = time.monotonic()
        if not self._in_utterance:
            self._in_utterance = True
            self.first_sample_time = now
        with self._lock:
            self.written_s += len(chunk) / float(rate)
            if self._paused_left is not None:
                self._paused_left += len(chunk) / float(rate)
            else:
                self._done_at = max(self._done_at, now) + len(chunk) / float(rate)
        self.samples_played += len(chunk)
        if last:
            self._in_utterance = False

    def finish(self) -> None:
        self._in_utterance = False

    def pause(self) -> None:
        with self._lock:
            if self._paused_left is None:
                self._paused_left = max(0.0, self._done_at - time.monotonic())
                self.pauses += 1

    def resume(self) -> None:
        with self._lock:
            left, self._paused_left = self._paused_left, None
            if left is not None:
                self._done_at = time.monotonic() + left

    def stop(self, timeout: float = 0.05) -> bool:
        self._in_utterance = False
        with self._lock:
            self._done_at = 0.0
            self._paused_left = None
        return True

    def wait_done(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.playing:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def wait_first_sample(self, timeout: float | None = None) -> float | None:
        return self.first_sample_time

    def close(self) -> None:
        self.stop()
