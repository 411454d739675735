"""Playback of streamed speech: float32 chunks in, the device's rate and channels out.

The output stream runs for as long as the player is open and plays silence while idle,
so the first chunk of a reply starts within one block plus the device latency instead of
waiting for a stream to open. Chunks are resampled from the voice's rate to the device
rate in the caller's thread (soxr, stateful across the chunks of one utterance) and
queued in a preallocated ring buffer; the PortAudio callback only copies from it.

``stop()`` (barge-in) asks the callback to fade the queued audio out over ``fade_ms`` and
to drop the rest; it returns once that happened, so silence reaches the speaker one
output latency later. ``pause()`` (the user talking over the reply, before it is known
whether they mean to interrupt) fades out the same way but keeps the queue: the callback
plays silence without reading it, play() goes on queueing, and ``resume()`` fades back in
from the next queued sample, so the reply goes on where it stopped (less the few
milliseconds of the fade). A paused player with queued audio still counts as ``playing``:
``wait_done`` waits through the pause, which is what a reply waiting for its end needs.

The time the first sample of an utterance reached the digital-to-analogue converter is
computed from the stream's ``outputBufferDacTime`` (or
``currentTime`` plus the stream latency where the host API does not report it) and given
in ``time.monotonic()`` seconds: :attr:`Player.first_sample_time`.

Every block handed to the device, silence included, is also published with its DAC time
into :attr:`Player.reference` (a copy into a preallocated ring): the echo canceller on the
microphone (``voicebot.audio.echo``) subtracts what the loudspeaker actually played.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import sounddevice as sd

from voicebot.audio.capture import STALL_SECONDS, close_stream_quietly, open_started_stream
from voicebot.audio.devices import (
    AudioDeviceError,
    DeviceInfo,
    DeviceLostError,
    choose_device,
    pick_rate,
)
from voicebot.audio.echo import PlaybackReference, block_time
from voicebot.audio.resample import StreamResampler
from voicebot.audio.ring_buffer import RingBuffer

log = logging.getLogger(__name__)

_POLL = 0.001
# Output buffering: small enough that stop() is silent at the speaker well within 50 ms
# (fade 5 ms + one block + this), large enough to ride out a busy 2-core machine
# without underruns (PortAudio's "low" setting, ~10 ms here, glitched under load).
DEFAULT_LATENCY = 0.025


class Player:
    """Plays queued float32 audio on an output device chosen by name."""

    def __init__(self, device: str = "", *, samplerate: float | None = None,
                 channels: int | None = None, buffer_seconds: float = 60.0,
                 block_ms: float = 5.0, latency: float | str = DEFAULT_LATENCY,
                 fade_ms: float = 5.0,
                 on_error: Callable[[AudioDeviceError], None] | None = None) -> None:
        choice = choose_device(device, "output")
        self.device: DeviceInfo = choice.device
        self.fallback_reason = choice.fallback_reason
        self.channels = int(channels or min(self.device.max_output_channels, 2))
        self.samplerate = pick_rate(self.device, "output", samplerate, self.channels)
        self.block_frames = max(1, round(self.samplerate * block_ms / 1000))
        self.latency = latency
        self.on_error = on_error
        self._queue = RingBuffer(int(self.samplerate * buffer_seconds))
        self._reader = self._queue.reader()
        self._work = np.zeros(self.block_frames * 8, np.float32)  # callback scratch
        self._fade = np.linspace(1.0, 0.0, max(2, round(self.samplerate * fade_ms / 1000)),
                                 dtype=np.float32)
        self._resampler: StreamResampler | None = None
        self._stream: sd.OutputStream | None = None
        self._latency_s = 0.0  # the open stream's output latency (read by the callback)
        # What was played and when, for the echo canceller (written by the callback).
        self.reference = PlaybackReference(self.samplerate)
        # Notices a lost device while nothing is being played (play() notices it too).
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        self._lost_lock = threading.Lock()
        self._closing = False
        self._stream_finished = False  # set on PortAudio's thread when the stream ends
        # State shared with the callback: plain attributes, each written by one side only
        # (noted per attribute) so no lock is needed.
        self._stop_requested = 0  # caller: incremented by stop()
        self._stops_done = 0  # callback: catches up with _stop_requested after the fade
        self._fade_pos = 0  # callback
        self._paused = False  # caller: pause() / resume() / stop()
        self._pause_pos = 0  # callback: frames of the pause fade-out done (len: silent)
        self._fade_in_pos = len(self._fade)  # callback: frames of a resume's fade-in done
        self._in_utterance = False  # caller
        self._awaiting_first = False  # caller sets, callback clears
        self._first_frame = 0  # caller: queue index where the current utterance starts
        self._last_callback = 0.0  # callback
        self.first_sample_time: float | None = None  # callback: monotonic s, see module doc
        self.utterance_started_at: float | None = None  # caller: play() that started it
        self.underflows = 0  # callback: PortAudio output underflows
        self.error: AudioDeviceError | None = None

    # ----- life cycle -----------------------------------------------------------
    def open(self) -> Player:
        if self._stream is not None:
            return self
        self._closing = False
        self._stream_finished = False
        self.error = None
        self._last_callback = time.monotonic()
        self._stream = open_started_stream(
            sd.OutputStream, f"{self.device.label} for playback at {self.samplerate:g} Hz",
            device=self.device.index, samplerate=self.samplerate, channels=self.channels,
            dtype="float32", blocksize=self.block_frames, latency=self.latency,
            callback=self._callback, finished_callback=self._finished)
        self._latency_s = float(self._stream.latency)
        self._watchdog_stop.clear()
        self._watchdog = threading.Thread(target=self._watch, name="audio-player-watchdog",
                                          daemon=True)
        self._watchdog.start()
        return self

    def close(self) -> None:
        self._closing = True
        self._watchdog_stop.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(timeout=1)
        stream, self._stream = self._stream, None
        if stream is not None and not close_stream_quietly(stream):
            log.warning("closing the output stream of %s timed out", self.device.label)

    def __enter__(self) -> Player:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def output_latency(self) -> float:
        return float(self._stream.latency) if self._stream is not None else 0.0

    @property
    def queued_seconds(self) -> float:
        return self._reader.available / self.samplerate

    @property
    def playing(self) -> bool:
        """Audio is queued (and will be heard, after a pause if the player is paused)."""
        return self._reader.available > 0

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def written_s(self) -> float:
        """Seconds of audio queued since the player was made (a running total)."""
        return self._queue.frames_written / self.samplerate

    @property
    def played_s(self) -> float:
        """Of ``written_s``, the seconds handed to the device (or dropped by stop()): a
        clause that started before this point has been heard, at least its beginning."""
        return self._reader.position / self.samplerate

    # ----- feeding --------------------------------------------------------------
    def play(self, chunk: np.ndarray, rate: float, last: bool = False) -> None:
        """Queue ``chunk`` (float32 mono at ``rate`` Hz); ``last`` ends the utterance.

        Blocks while the queue is full. A ``stop()`` from another thread makes it return
        at once, dropping what it had not queued yet.
        """
        self._check_alive()
        stop_generation = self._stop_requested
        if self._resampler is None or self._resampler.in_rate != float(rate):
            self._resampler = StreamResampler(rate, self.samplerate)
        audio = np.asarray(chunk, dtype=np.float32).reshape(-1)
        audio = self._resampler.process(audio, last=last)
        if not self._in_utterance:
            # An utterance runs from its first play() to play(last=True), finish() or
            # stop(); a gap in the middle (TTS slower than real time) does not restart it.
            self._in_utterance = True
            self.first_sample_time = None
            self.utterance_started_at = time.monotonic()
            self._first_frame = self._queue.frames_written
            self._awaiting_first = True
        if last:
            self._resampler = None
            self._in_utterance = False
        self._enqueue(audio, stop_generation)

    def finish(self) -> None:
        """End the utterance: flush the resampler so its last milliseconds are played."""
        if self._resampler is not None:
            self.play(np.zeros(0, np.float32), self._resampler.in_rate, last=True)

    def _enqueue(self, audio: np.ndarray, stop_generation: int) -> None:
        pos = 0
        while pos < len(audio):
            if self._stop_requested != stop_generation:
                return
            self._check_alive()
            space = self._queue.capacity - self._reader.available - self.block_frames
            if space <= 0:
                time.sleep(0.01)
                continue
            n = min(space, len(audio) - pos)
            self._queue.write(audio[pos:pos + n])
            pos += n

    # ----- pausing, stopping and waiting -------------------------------------------
    def pause(self) -> None:
        """Fade out over ``fade_ms`` and play silence, keeping what is queued; returns at
        once (the callback fades within its next block). play() may go on queueing."""
        self._paused = True

    def resume(self) -> None:
        """Fade back in and go on from the first queued sample not yet heard."""
        self._paused = False

    def stop(self, timeout: float = 0.05) -> bool:
        """Fade out and drop everything queued; True once the callback has done it.

        Returns within ``timeout`` (50 ms) either way; the fade itself is ``fade_ms``.
        """
        self._resampler = None
        self._in_utterance = False
        self._awaiting_first = False
        self._stop_requested += 1
        target = self._stop_requested
        try:
            if self._stream is None or self.error is not None:
                self._reader.skip_to_end()
                return True
            deadline = time.monotonic() + timeout
            while self._stops_done < target:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(_POLL)
            return True
        finally:
            # Cleared after the callback dropped the queue (or gave up waiting): cleared
            # first, the callback could fade the paused reply back in for a block.
            self._paused = False

    def wait_done(self, timeout: float | None = None) -> bool:
        """Wait until everything queued has been handed to the device."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.playing:
            self._check_alive()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def wait_first_sample(self, timeout: float | None = None) -> float | None:
        """The first-sample time of the current utterance, waiting for it if needed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._awaiting_first:
            self._check_alive()
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_POLL)
        return self.first_sample_time

    def _watch(self) -> None:
        while not self._watchdog_stop.wait(0.25):
            if self.error is not None or self._stream is None:
                return
            try:
                self._check_alive()
            except AudioDeviceError:
                return  # reported through on_error and self.error by _lost()

    def _check_alive(self) -> None:
        if self.error is not None:
            raise self.error
        if self._stream is None:
            raise AudioDeviceError("the player is not open")
        if self._stream_finished and not self._closing:
            self._lost("the output stream stopped unexpectedly")
            raise self.error  # type: ignore[misc]
        stalled = time.monotonic() - self._last_callback
        if stalled > max(STALL_SECONDS, 40 * self.block_frames / self.samplerate):
            self._lost(f"the device stopped asking for audio {stalled:.1f} s ago")
            raise self.error  # type: ignore[misc]

    # ----- the PortAudio thread ---------------------------------------------------
    def _callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        now = self._last_callback = time.monotonic()
        if status and status.output_underflow:
            self.underflows += 1
        outdata.fill(0.0)
        reader = self._reader
        block_start = reader.position  # queue index of this block's first frame
        if self._stops_done != self._stop_requested:
            n = self._fade_out(frames)
        elif self._paused:
            n = self._pause_fade(frames)
        else:
            n = min(frames, reader.available, len(self._work))
            if n:
                reader.read(n, out=self._work)
                if self._pause_pos:  # resumed after a pause: fade in from its gain
                    self._fade_in_pos = len(self._fade) - min(self._pause_pos,
                                                              len(self._fade))
                    self._pause_pos = 0
                if self._fade_in_pos < len(self._fade):
                    self._fade_in(n)
        if n:
            outdata[:n] = self._work[:n, None]
        dac_time = max(now, block_time(now, time_info.outputBufferDacTime,
                                       time_info.currentTime, self._latency_s))
        self.reference.publish(outdata[:, 0], dac_time)
        if n and self._awaiting_first and block_start + n > self._first_frame:
            # The utterance's first frame is in this block (the previous utterance's tail
            # may precede it): its DAC time is the block's plus its offset in the block.
            offset = max(0, self._first_frame - block_start) / self.samplerate
            self.first_sample_time = dac_time + offset
            self._awaiting_first = False

    def _pause_fade(self, frames: int) -> int:
        """Paused: the first frames fade out (and are consumed), then silence."""
        fade = self._fade
        if self._fade_in_pos < len(fade):  # paused again while fading in: same gain
            self._pause_pos = max(self._pause_pos, len(fade) - self._fade_in_pos)
            self._fade_in_pos = len(fade)
        n = min(frames, self._reader.available, len(fade) - self._pause_pos,
                len(self._work))
        if n > 0:
            block = self._reader.read(n, out=self._work)
            np.multiply(block, fade[self._pause_pos:self._pause_pos + n], out=block)
            self._pause_pos += n
        elif self._pause_pos == 0:
            self._pause_pos = len(fade)  # nothing was sounding: silent already
        return max(n, 0)

    def _fade_in(self, n: int) -> None:
        fade = self._fade
        m = min(n, len(fade) - self._fade_in_pos)
        # The fade-out ramp read backwards: gain rises from where it was to 1.
        ramp = fade[len(fade) - self._fade_in_pos - m:len(fade) - self._fade_in_pos][::-1]
        np.multiply(self._work[:m], ramp, out=self._work[:m])
        self._fade_in_pos += m

    def _fade_out(self, frames: int) -> int:
        reader = self._reader
        fade = self._fade
        if self._pause_pos:  # stopped while paused: silent (or fading) already, drop all
            reader.skip_to_end()
            self._pause_pos = 0
            self._fade_pos = 0
            self._stops_done = self._stop_requested
            return 0
        n = min(frames, reader.available, len(fade) - self._fade_pos, len(self._work))
        if n > 0:
            block = reader.read(n, out=self._work)
            np.multiply(block, fade[self._fade_pos:self._fade_pos + n], out=block)
            self._fade_pos += n
        if n < frames:  # faded to zero (or nothing left): drop the rest of the queue
            reader.skip_to_end()
            self._fade_pos = 0
            self._stops_done = self._stop_requested
        return n

    def _finished(self) -> None:
        # Runs on PortAudio's thread, which closing the stream may cancel (ALSA does):
        # only leave a note; the caller's next play()/wait reports it.
        self._stream_finished = True

    def _lost(self, why: str) -> None:
        with self._lost_lock:  # the watchdog and a caller may notice at the same time
            if self.error is not None:
                return
            self.error = DeviceLostError(f"the speaker {self.device.label} stopped working "
                                         f"({why}); choose another output device")
        log.error("%s", self.error)
        stream, self._stream = self._stream, None
        if stream is not None:
            threading.Thread(target=close_stream_quietly, args=(stream,), daemon=True,
                             name="audio-close-lost").start()
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                log.exception("the player error handler failed")
