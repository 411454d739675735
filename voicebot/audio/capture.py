"""Microphone capture: device-native stream in, mono 16 kHz / 22.05 kHz ring buffers out.

Two threads share the work so the PortAudio callback stays trivial:

* the **callback** copies each block into a preallocated ring buffer at the device's own
  rate and channel count, counts overflows and notes the time; nothing else (no
  allocation, no locks, no logging);
* the **pump** thread wakes every block, mixes the new frames to mono, tracks the peak
  and clipping, resamples them with soxr and appends them to one ring buffer per output
  rate (``ASR_RATE`` for recognition and the live plots, ``TRAINING_RATE`` for the
  recording wizard). It is also the watchdog: if the callback stops arriving or the
  stream finishes on its own, the device is gone; the stream is closed from a helper
  thread (a dead sound server can make that call block), ``error`` is set and
  ``on_error`` is called once. The app then tells the user and may open another device.

With an ``echo_canceller`` the pump also removes the loudspeaker's echo from the
``ASR_RATE`` ring: the callback stamps each block with its ADC time (:attr:`timeline`),
and the pump's ``voicebot.audio.echo.EchoStream`` pairs every 10 ms of microphone with
what the player published as played at that moment (:meth:`set_echo_reference`). The
``TRAINING_RATE`` ring stays unprocessed (voice recordings are made without the bot
speaking).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable

import numpy as np
import sounddevice as sd

from voicebot.audio import portaudio_life
from voicebot.audio.devices import (
    AudioDeviceError,
    DeviceInfo,
    DeviceLostError,
    choose_device,
    pick_rate,
)
from voicebot.audio.echo import (
    EchoCanceller,
    EchoStream,
    PlaybackReference,
    Timeline,
    block_time,
)
from voicebot.audio.resample import ASR_RATE, StreamResampler
from voicebot.audio.ring_buffer import RingBuffer

log = logging.getLogger(__name__)

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped
# The device counts as lost when no callback has arrived for this long while running.
# Long enough that a fully loaded 2-core machine (callbacks a few hundred ms late) is not
# taken for a vanished device; short enough to report a lost one within 2 s.
STALL_SECONDS = 1.25
_CLOSE_TIMEOUT = 2.0


def open_started_stream(kind: Callable[..., sd._StreamBase], describe: str,
                        **settings) -> sd._StreamBase:
    """Open a PortAudio stream of ``kind`` and start it. On failure the half-open stream
    is closed and an AudioDeviceError names the device (``describe``)."""
    stream = None
    try:
        stream = kind(**settings)
        stream.start()
    except sd.PortAudioError as exc:
        if stream is not None:
            close_stream_quietly(stream)
        raise AudioDeviceError(f"could not open {describe}: {exc}") from exc
    return stream


def close_stream_quietly(stream: sd._StreamBase, timeout: float = _CLOSE_TIMEOUT) -> bool:
    """Abort and close ``stream`` without risking a hang; True if it closed in time.

    On a vanished device PortAudio's abort/close can block for a long time (ALSA waits for
    a server that will never answer), so the calls run in a daemon thread and are
    abandoned after ``timeout``.
    """
    def close() -> None:
        with portaudio_life.closing():  # a stuck close keeps PortAudio from terminating
            with contextlib.suppress(Exception):
                stream.abort(ignore_errors=True)
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)

    closer = threading.Thread(target=close, name="audio-close", daemon=True)
    closer.start()
    closer.join(timeout)
    return not closer.is_alive()


class Capture:
    """Records from an input device by name; read the results from :attr:`rings`."""

    def __init__(self, device: str = "", *, samplerate: float | None = None,
                 channels: int | None = None, output_rates: Iterable[int] = (ASR_RATE,),
                 buffer_seconds: float = 30.0, block_ms: float = 10.0,
                 latency: float | str = "low",
                 on_error: Callable[[AudioDeviceError], None] | None = None,
                 echo_canceller: EchoCanceller | None = None) -> None:
        """``samplerate``/``channels`` default to the device's own (channels capped at 2:
        the signal is mixed to mono anyway). An unsupported ``samplerate`` falls back to
        one the device supports; the output rates stay the same either way. Each output rate
        costs a resampler pass per block (the training recorder asks for ``TRAINING_RATE``
        too; the conversation does not).
        ``echo_canceller`` (at ``ASR_RATE``) cleans the ``ASR_RATE`` ring once a player's
        reference is given to :meth:`set_echo_reference`."""
        choice = choose_device(device, "input")
        self.device: DeviceInfo = choice.device
        self.fallback_reason = choice.fallback_reason
        self.channels = int(channels or min(self.device.max_input_channels, 2))
        if self.channels > self.device.max_input_channels:
            raise AudioDeviceError(f"{self.device.label} has only "
                                   f"{self.device.max_input_channels} input channel(s), "
                                   f"not {self.channels}")
        self.samplerate = pick_rate(self.device, "input", samplerate, self.channels)
        self.block_frames = max(1, round(self.samplerate * block_ms / 1000))
        self.latency = latency
        self.on_error = on_error
        self.rings: dict[int, RingBuffer] = {
            int(rate): RingBuffer(int(rate * buffer_seconds), sample_rate=int(rate))
            for rate in output_rates}
        # Raw device frames: enough for the pump to fall behind by a second without loss.
        self._raw = RingBuffer(int(self.samplerate), channels=self.channels)
        self._raw_reader = self._raw.reader()
        # ADC time of each raw block (callback), for pairing with the played audio.
        self.timeline = Timeline(self.samplerate)
        self._input_latency = 0.0
        self.echo: EchoStream | None = None
        if echo_canceller is not None:
            if ASR_RATE not in self.rings or echo_canceller.rate != ASR_RATE:
                raise ValueError(f"the echo canceller cleans the {ASR_RATE} Hz ring")
            self.echo = EchoStream(echo_canceller, self.timeline)
        # Work buffers of the pump: up to half a second per pass, allocated once.
        pass_frames = int(self.samplerate // 2)
        self._raw_out = np.zeros((pass_frames, self.channels), np.float32)
        self._mono = np.zeros(pass_frames, np.float32)
        self._resamplers = {rate: StreamResampler(self.samplerate, rate) for rate in self.rings}
        self._stream: sd.InputStream | None = None
        self._pump: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_callback = 0.0
        self._stream_finished = False
        self.input_overflows = 0  # PortAudio said the device delivered data we missed
        self.clipped_samples = 0
        self.peak = 0.0  # largest |sample| since the last take_peak()
        self.error: AudioDeviceError | None = None

    # ----- public ---------------------------------------------------------------
    def ring(self, rate: int = ASR_RATE) -> RingBuffer:
        return self.rings[rate]

    @property
    def running(self) -> bool:
        return self._stream is not None and self.error is None

    @property
    def dropped_frames(self) -> int:
        """Device frames the pump lost because it fell a whole second behind."""
        return self._raw_reader.dropped_frames + self._raw.writer_dropped

    @property
    def echo_cancelling(self) -> bool:
        """True when the ``ASR_RATE`` ring is cleaned of a player's echo."""
        return self.echo is not None and self.echo.reference is not None

    def set_echo_reference(self, reference: PlaybackReference | None) -> bool:
        """Cancel the echo of what ``reference`` (a Player's) plays; None stops it.
        False when this capture has no echo canceller."""
        if self.echo is None:
            return False
        self.echo.set_reference(reference)
        return True

    def take_peak(self) -> float:
        """The largest |sample| since the previous call (for a level meter)."""
        peak, self.peak = self.peak, 0.0
        return peak

    def stats(self) -> dict:
        return {"device": self.device.label, "samplerate": self.samplerate,
                "channels": self.channels, "input_overflows": self.input_overflows,
                "dropped_frames": self.dropped_frames, "clipped_samples": self.clipped_samples,
                "echo": self.echo.stats() if self.echo is not None else None,
                "error": str(self.error) if self.error else "", "running": self.running}

    def start(self) -> Capture:
        if self._stream is not None:
            return self
        self._stopping.clear()
        self._stream_finished = False
        self.error = None
        self._last_callback = time.monotonic()
        self._stream = open_started_stream(
            sd.InputStream, f"{self.device.label} at {self.samplerate:g} Hz, "
            f"{self.channels} channel(s)",
            device=self.device.index, samplerate=self.samplerate, channels=self.channels,
            dtype="float32", blocksize=self.block_frames, latency=self.latency,
            callback=self._callback, finished_callback=self._finished)
        self._input_latency = float(self._stream.latency)
        self._pump = threading.Thread(target=self._pump_loop, name="audio-capture-pump",
                                      daemon=True)
        self._pump.start()
        return self

    def stop(self) -> None:
        """Stop recording; never blocks for long, even if the device has vanished."""
        self._stopping.set()
        pump, self._pump = self._pump, None
        if pump is not None and pump is not threading.current_thread():
            pump.join(timeout=_CLOSE_TIMEOUT)
        stream, self._stream = self._stream, None
        if stream is not None and not close_stream_quietly(stream):
            log.warning("closing the input stream of %s timed out", self.device.label)
        self._drain()  # whatever arrived before the stop still reaches the rings

    close = stop

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ----- the PortAudio thread ---------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        now = time.monotonic()
        if status and status.input_overflow:
            self.input_overflows += 1
        # Without an ADC stamp: the block's first frame was captured its length plus the
        # input latency ago.
        self.timeline.stamp(self._raw.frames_written, block_time(
            now, time_info.inputBufferAdcTime, time_info.currentTime,
            -(self._input_latency + frames / self.samplerate)))
        self._raw.write(indata)
        self._last_callback = now

    def _finished(self) -> None:
        # Runs on PortAudio's thread, which closing the stream may cancel (ALSA does):
        # only leave a note; the pump thread reports it.
        self._stream_finished = True

    # ----- the pump thread ------------------------------------------------------
    def _pump_loop(self) -> None:
        period = self.block_frames / self.samplerate
        while not self._stopping.wait(period):
            self._drain()
            if self.error is not None:
                return
            stream = self._stream
            stalled = time.monotonic() - self._last_callback
            if stalled > max(STALL_SECONDS, 20 * period):
                self._lost(f"no audio from {self.device.label} for {stalled:.1f} s")
            elif self._stream_finished or (stream is not None and not stream.active):
                self._lost("the input stream stopped unexpectedly")

    def _drain(self) -> None:
        while self._raw_reader.available > 0:
            raw = self._raw_reader.read(out=self._raw_out)
            n = len(raw)
            if n == 0:
                return
            mono = self._mono[:n]
            if self.channels == 1:
                np.copyto(mono, raw[:, 0])
            else:
                np.mean(raw, axis=1, out=mono)
            peak = float(np.max(np.abs(raw)))
            self.peak = max(self.peak, peak)
            if peak >= CLIP_LEVEL:
                self.clipped_samples += int(np.count_nonzero(np.abs(raw) >= CLIP_LEVEL))
            for rate, resampler in self._resamplers.items():
                audio = resampler.process(mono)
                if rate == ASR_RATE and self.echo is not None:
                    audio = self.echo.process(audio, self._raw_reader.position)
                self.rings[rate].write(audio)

    def _lost(self, why: str) -> None:
        if self.error is not None or self._stopping.is_set():
            return
        self.error = DeviceLostError(f"the microphone {self.device.label} stopped working "
                                     f"({why}); choose another input device")
        log.error("%s", self.error)
        self._stopping.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            threading.Thread(target=close_stream_quietly, args=(stream,), daemon=True,
                             name="audio-close-lost").start()
        if self.on_error is not None:
            try:
                self.on_error(self.error)
            except Exception:
                log.exception("the capture error handler failed")
