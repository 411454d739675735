"""Acoustic echo cancellation: the microphone minus what the loudspeaker played.

On laptop speakers the microphone hears the bot's own voice; without cancellation
hands-free mode has to ignore the microphone while the bot speaks (unless the user
declares a headset). Here WebRTC's AEC3 (``pywebrtc-audio``) removes the echo, so the user
can interrupt by voice.

Why ``pywebrtc-audio`` (measured on this 2-core machine, 8.4 s of Piper speech through
:mod:`voicebot.audio.room_sim`, 90 ms delay, echo at speech level, 16 kHz, 10 ms frames):

======================  ======  =============  ==========  ===================
package                 ERLE    CPU of a core  wheel       depends on, licence
======================  ======  =============  ==========  ===================
pywebrtc-audio 0.2.0    32 dB   0.8 %          0.44 MB     numpy; Apache-2.0
livekit 1.2.0 (APM)     32 dB   1.1 %          11.9 MB     protobuf, aiofiles,
                                                           an FFI runtime;
                                                           Apache-2.0
webrtc-apm 0.1.6        -       -              -           no wheel on PyPI for
                                                           this platform
======================  ======  =============  ==========  ===================

Both wrap the same AEC3, so the echo removed is the same; pywebrtc-audio is 27x smaller,
cheaper per frame (no protobuf round trip) and brings no runtime of its own.

The pieces, all GUI-free:

* :class:`Timeline` - (frame index, ``time.monotonic()``) stamps written by an audio
  callback: when a captured block reached the ADC or a played block will reach the DAC.
  The median offset over the last few dozen stamps maps any frame to a time, so callback
  jitter averages out and clock drift between the sound card and the system is followed.
* :class:`PlaybackReference` - what the player actually played (mono, at the device rate)
  and its timeline; the player's callback publishes every block into it (copy only).
* :class:`EchoCanceller` - AEC3 on 10 ms frames of 16 kHz audio: far end (played) and
  near end (microphone) in, the cleaned microphone out.
* :class:`EchoStream` - run by the capture pump thread: pairs each 10 ms microphone frame
  with the reference played at the same moment (plus :data:`LEAD_S`, so the echo always
  comes after its reference even when a device misreports its latency by a few ms) and
  cancels. The sound's trip through the room and whatever error the timestamps have are
  left to AEC3's own delay estimator; the pairing is re-anchored only when the timestamps
  move more than :data:`TOLERANCE_S` (an underrun's gap, long clock drift), which AEC3
  rides out in under half a second. Smaller wander is left alone: through PulseAudio the
  capture's ADC stamps wander by ±6 ms while the real path stays put, and re-anchoring
  on each 12 ms of it cost AEC3 seconds of reconvergence (measured on the virtual
  devices: ERLE fell to 5-13 dB for 2.5 s). Where the stamps ask for audio that has not
  been played yet (DAC times reported too early), the pairing backs off once by the
  shortfall: a constant extra delay instead of silence, which would let the echo through.
  soxr hands the resampled reference out in blocks, up to ~40 ms after it was played, so
  a microphone frame may wait up to :data:`MAX_WAIT_S` for its reference: the cleaned
  ring runs that much behind the raw microphone at worst (typically 10-30 ms).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from voicebot.audio.resample import ASR_RATE, StreamResampler
from voicebot.audio.ring_buffer import RingBuffer

log = logging.getLogger(__name__)

FRAME_S = 0.010  # AEC3 works on 10 ms frames
LEAD_S = 0.020  # reference fed this much ahead of the microphone (causality margin)
TOLERANCE_S = 0.040  # re-anchor the pairing when the timestamps disagree by more
BACKOFF_MARGIN_S = 0.010  # extra delay taken when the stamps ask for unplayed audio
# soxr hands out the resampled reference in blocks, up to ~40 ms after it was played:
# a microphone frame waits this long for its reference before the pairing backs off.
MAX_WAIT_S = 0.080
STALLED_S = 0.5  # a player that has published nothing for this long is not waited for
# Played silence needs no pairing: the far end is zeros whatever the stamps say. Pairing
# costs ~2% of a core in Python (stamps' medians, per-frame copies) on top of AEC3's ~1%,
# all the time the app sits idle with its devices open. The margin covers the
# resampler's filter tail after the last sound and the pairing's own tolerance.
SILENT_MARGIN_S = 0.1
REFERENCE_SECONDS = 2.0  # played audio kept for the capture pump
# Stamps the median runs over (0.6-1.3 s of 5-10 ms callbacks). Through PulseAudio the
# capture's ADC stamps scatter by ±5 ms, and after an underrun the player's DAC stamps are
# wrong for a moment: a short window (0.12 s) followed them into re-anchoring back and
# forth, each costing AEC3 a reconvergence (ERLE 8-12 dB in 2 of 3 runs on the virtual
# devices); a long one outvotes them (54-62 dB in 4 of 4). A real jump is followed
# within half the window.
CAPTURE_STAMPS = 128
PLAYBACK_STAMPS = 128
_BAD_STAMP_S = 1.0  # a PortAudio timestamp further than this from "now" is ignored


class EchoUnavailableError(RuntimeError):
    """The echo canceller could not be loaded (the reason is the message)."""


def block_time(now: float, stamp: float, current: float, fallback: float) -> float:
    """``time.monotonic()`` of a callback block from PortAudio's stream-clock stamps.

    ``stamp`` is ``inputBufferAdcTime`` or ``outputBufferDacTime`` and ``current`` the
    callback's ``currentTime`` (both on the stream's clock); where the host API gives no
    usable stamp, ``now + fallback`` (minus the input latency, plus the output latency).
    """
    ahead = stamp - current
    if stamp > 0 and -_BAD_STAMP_S < ahead < _BAD_STAMP_S:
        return now + ahead
    return now + fallback


class Timeline:
    """Stamps (frame index, monotonic time) of one stream, written by its callback."""

    def __init__(self, rate: float, keep: int = CAPTURE_STAMPS) -> None:
        self.rate = float(rate)
        self._stamps = RingBuffer(keep + 2, channels=2, dtype=np.float64)
        self._row = np.zeros((1, 2), np.float64)
        self._keep = keep

    def stamp(self, index: int, when: float) -> None:
        """Frame ``index`` is (was) at the converter at ``when``. Callback-safe."""
        row = self._row
        row[0, 0] = index
        row[0, 1] = when
        self._stamps.write(row)

    @property
    def ready(self) -> bool:
        return self._stamps.frames_written > 0

    def last_time(self) -> float:
        """The newest stamp's time (-inf before any)."""
        latest = self._stamps.latest(1)
        return float(latest[0, 1]) if len(latest) else float("-inf")

    def offset(self) -> float | None:
        """Median of ``time - index / rate`` over the recent stamps (None before any)."""
        rows = np.array(self._stamps.latest(self._keep))  # copy: the writer goes on
        if len(rows) == 0:
            return None
        return float(np.median(rows[:, 1] - rows[:, 0] / self.rate))

    def time_of(self, index: float, offset: float | None = None) -> float | None:
        offset = self.offset() if offset is None else offset
        return None if offset is None else offset + index / self.rate

    def index_at(self, when: float, offset: float | None = None) -> float | None:
        offset = self.offset() if offset is None else offset
        return None if offset is None else (when - offset) * self.rate


class PlaybackReference:
    """What a player played (mono, ``rate`` Hz) and when; its callback calls publish()."""

    def __init__(self, rate: float, seconds: float = REFERENCE_SECONDS) -> None:
        self.rate = float(rate)
        self.ring = RingBuffer(max(1, int(rate * seconds)))
        self.timeline = Timeline(rate, PLAYBACK_STAMPS)

    def publish(self, block: np.ndarray, dac_time: float) -> None:
        """``block`` (1-D, may be a strided view) starts at the DAC at ``dac_time``.

        Runs in the PortAudio callback: a stamp and a copy, no allocation of audio."""
        self.timeline.stamp(self.ring.frames_written, dac_time)
        self.ring.write(block)


class EchoCanceller:
    """WebRTC AEC3 on mono 16 kHz audio, whole 10 ms frames at a time."""

    def __init__(self, rate: int = ASR_RATE, stream_delay_ms: int = 0) -> None:
        try:
            import pywebrtc_audio
        except Exception as exc:  # ImportError, or a broken native library
            raise EchoUnavailableError(f"pywebrtc-audio could not be imported: {exc}") from exc
        self.rate = int(rate)
        self.frame = round(self.rate * FRAME_S)
        try:
            self._aec = pywebrtc_audio.EchoCanceller(sample_rate=self.rate, num_channels=1,
                                                     stream_delay_ms=int(stream_delay_ms))
        except Exception as exc:
            raise EchoUnavailableError(f"AEC3 did not start at {self.rate} Hz: {exc}") from exc

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """The microphone ``near`` without the echo of ``far`` (same length, whole frames).

        Each 10 ms far frame is analysed before the near frame of the same index."""
        if len(near) != len(far) or len(near) % self.frame:
            raise ValueError(f"near and far must be the same whole number of {self.frame}-"
                             f"sample frames, got {len(near)} and {len(far)}")
        if len(near) == 0:
            return np.zeros(0, np.float32)
        return self._aec.process(np.ascontiguousarray(near, np.float32),
                                 np.ascontiguousarray(far, np.float32))

    def reset(self) -> None:
        self._aec.reset()


def load_echo_canceller(rate: int = ASR_RATE) -> tuple[EchoCanceller | None, str]:
    """The canceller, or None and the reason it is unavailable (for the log and the user)."""
    try:
        return EchoCanceller(rate), ""
    except EchoUnavailableError as exc:
        return None, str(exc)


class _ReferenceFeed:
    """The capture pump's view of one PlaybackReference, resampled to the AEC rate."""

    def __init__(self, reference: PlaybackReference, rate: int) -> None:
        self.reference = reference
        self.rate = rate
        self.reader = reference.ring.reader()
        self.origin = self.reader.position  # device frame of resampled sample 0
        self.dropped = self.reader.dropped_frames
        self.resampler = StreamResampler(reference.rate, rate)
        self.ring = RingBuffer(int(rate * REFERENCE_SECONDS))
        self.scratch = np.zeros(max(1, int(reference.rate * 0.25)), np.float32)
        self.sound_until = 0  # resampled samples: none at or after this are non-zero

    def pull(self) -> bool:
        """Bring in what was played since the last call; False if frames were lost."""
        while self.reader.available > 0:
            block = self.reader.read(out=self.scratch)
            if self.reader.dropped_frames != self.dropped:
                return False  # the pump fell seconds behind: start over from here
            resampled = self.resampler.process(block)
            self.ring.write(resampled)
            if block.any():  # the resampler's own tail is covered by SILENT_MARGIN_S
                self.sound_until = self.ring.frames_written
        return True

    def silent_from(self, position: float) -> bool:
        """Is every reference sample from ``position`` on (all that will be paired with
        microphone audio that has arrived) silent? Then pairing would give zeros."""
        return position >= self.sound_until + SILENT_MARGIN_S * self.rate

    def copy(self, start: int, out: np.ndarray) -> None:
        """Reference samples ``start ..`` into ``out``; zeros where none are held."""
        out.fill(0.0)
        ring = self.ring
        lo = max(start, ring.frames_written - ring.capacity, 0)
        hi = min(start + len(out), ring.frames_written)
        if hi <= lo:
            return
        held = ring.latest(ring.frames_written - lo)[:hi - lo]
        out[lo - start:hi - start] = held


class EchoStream:
    """Time-pairs microphone frames with the played reference and cancels the echo.

    Runs in one thread (the capture pump); :meth:`set_reference` may be called from any.
    """

    def __init__(self, canceller: EchoCanceller, mic_timeline: Timeline,
                 lead_s: float = LEAD_S, tolerance_s: float = TOLERANCE_S) -> None:
        self.canceller = canceller
        self.rate = canceller.rate
        self.frame = canceller.frame
        self.mic_timeline = mic_timeline
        self.lead_s = lead_s
        self.tolerance = tolerance_s * self.rate
        self._reference: PlaybackReference | None = None
        self._feed: _ReferenceFeed | None = None
        self._lock = threading.Lock()
        self._pending = np.zeros(0, np.float32)
        self._far = np.zeros(self.frame, np.float32)
        self._position: float | None = None  # next reference sample to pair
        self._backoff = 0.0  # samples: learnt when the stamps ask for unplayed audio
        self._margin = BACKOFF_MARGIN_S * self.rate
        self.realigns = 0  # times the pairing was re-anchored (after the first)
        self.frames = 0
        self.frames_with_reference = 0
        self.late_reference = 0  # times the stamps asked for audio not played yet
        self.frames_silent = 0  # paired without looking up: only silence was played
        self.cpu_seconds = 0.0  # thread CPU time spent in process()

    def set_reference(self, reference: PlaybackReference | None) -> None:
        with self._lock:
            self._reference = reference

    @property
    def reference(self) -> PlaybackReference | None:
        return self._reference

    def process(self, mic: np.ndarray, end_index: int) -> np.ndarray:
        """Cancel the echo in ``mic`` (new samples at the AEC rate).

        ``end_index`` is the microphone device frame just after the last one these
        samples came from (on ``mic_timeline``). Whole frames come out; up to one frame
        waits for the next call.
        """
        started = time.thread_time()
        try:
            return self._process(mic, end_index)
        finally:
            self.cpu_seconds += time.thread_time() - started

    def _process(self, mic: np.ndarray, end_index: int) -> np.ndarray:
        pending = np.concatenate([self._pending, np.asarray(mic, np.float32)])
        frames = len(pending) // self.frame
        if frames == 0:
            self._pending = pending
            return np.zeros(0, np.float32)
        feed = self._current_feed()
        far = np.zeros(frames * self.frame, np.float32)
        if feed is not None and self._position is not None \
                and feed.silent_from(self._position - self.tolerance):
            # Nothing but silence played since the pairing's position (give or take a
            # re-anchoring): the far end is zeros; keep the position moving as pairing
            # would, so the next sound is paired exactly as without this shortcut.
            self._position += frames * self.frame
            self.frames_with_reference += frames  # paired, with known silence
            self.frames_silent += frames
            mic_offset = None
        else:
            mic_offset = self.mic_timeline.offset()
        if feed is not None and mic_offset is not None:
            end_time = self.mic_timeline.time_of(end_index, mic_offset)
            ref_offset = feed.reference.timeline.offset()
            for k in range(frames):
                when = end_time - (len(pending) - k * self.frame) / self.rate
                # A frame waits (at most MAX_WAIT_S) for its reference to be resampled.
                may_wait = end_time - when < MAX_WAIT_S
                if not self._fill_far(feed, when, ref_offset,
                                      far[k * self.frame:(k + 1) * self.frame], may_wait):
                    frames = k
                    break
        near = pending[:frames * self.frame]
        self._pending = pending[frames * self.frame:].copy()
        self.frames += frames
        return self.canceller.process(near, far[:len(near)])

    def _current_feed(self) -> _ReferenceFeed | None:
        with self._lock:
            reference = self._reference
        feed = self._feed
        if reference is None:
            self._feed = self._position = None
            return None
        if feed is None or feed.reference is not reference or not feed.pull():
            feed = self._feed = _ReferenceFeed(reference, self.rate)
            self._position = None
            self._backoff = 0.0
            feed.pull()
        return feed

    def _fill_far(self, feed: _ReferenceFeed, when: float, ref_offset: float | None,
                  out: np.ndarray, may_wait: bool) -> bool:
        """The reference for the microphone frame at ``when`` into ``out``; False to wait
        for it (it was played but is still inside the resampler)."""
        if ref_offset is None:
            out.fill(0.0)
            return True
        device_index = (when + self.lead_s - ref_offset) * feed.reference.rate
        target = (device_index - feed.origin) * self.rate / feed.reference.rate
        target -= self._backoff
        position = self._position
        if position is None or abs(position - target) > self.tolerance:
            if position is not None:
                self.realigns += 1
            position = round(target)
        newest = feed.ring.frames_written - self.frame
        if position > newest:
            if may_wait:
                return False
            if when - feed.reference.timeline.last_time() < STALLED_S:
                # The stamps say the reference for this moment has not been played yet:
                # the device reports DAC times too early (PulseAudio's ALSA plugin can).
                # Pair with older audio from now on (silence would let the echo through):
                # a constant extra delay that AEC3's estimator absorbs once.
                self.late_reference += 1
                self._backoff += position - newest + self._margin
                position = round(newest - self._margin)
        self._position = position
        feed.copy(int(self._position), out)
        if feed.ring.frames_written >= self._position + self.frame:
            self.frames_with_reference += 1
        self._position += self.frame
        return True

    def stats(self) -> dict:
        return {"frames": self.frames, "frames_with_reference": self.frames_with_reference,
                "frames_silent": self.frames_silent,
                "realigns": self.realigns, "late_reference": self.late_reference,
                "cpu_seconds": round(self.cpu_seconds, 3)}
