"""``AudioScope``: waveform + mel spectrogram + level meter + readouts for one capture.

One display ``QTimer`` (30 Hz by default) drains the capture's 16 kHz ring buffer and
updates the plots that changed; a slow timer (4 Hz) refreshes the text, whose values
change too fast to read anyway. Nothing here touches PortAudio: the scope reads a
:class:`~voicebot.audio.ring_buffer.RingBuffer` that a
:class:`~voicebot.audio.capture.Capture` (or a test) fills.

Wiring it into a window::

    capture = Capture(settings.audio.input_device, on_error=...)   # GUI-free core
    scope = AudioScope()
    layout.addWidget(scope)
    scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
    capture.start(); scope.start()
    ...
    scope.stop(); capture.stop()

``on_error`` runs on the capture's pump thread: forward it to the GUI thread with a
signal (or let the slow timer show ``stats()["error"]``, which the scope does).

Idle cost: a frame without new audio draws nothing, nor does one that would leave the
picture as it was (digital silence on a flat line and a floor-coloured spectrogram);
while only quiet audio is on screen the plots are drawn ``QUIET_HZ`` times a second; and
while the scope is not on screen (hidden, on another tab, its window minimised) both
timers stop: ``start`` means "run whenever visible", and the scope resumes by itself
when it is shown again, from the newest audio (``MAX_DRAIN_SECONDS``). ``redraws``
counts the frames that drew.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from voicebot.audio.capture import CLIP_LEVEL
from voicebot.audio.features import StreamingLogMel
from voicebot.audio.resample import ASR_RATE
from voicebot.audio.ring_buffer import RingBuffer, RingReader
from voicebot.ui.widgets.elided_label import ElidedLabel
from voicebot.ui.widgets.level_meter import LevelMeter, to_db
from voicebot.ui.widgets.spectrogram import MelSpectrogramPlot
from voicebot.ui.widgets.waveform import FLAT_LEVEL, WaveformPlot

# 30 frames a second scroll smoothly enough for audio plots, at half the cost of 60
# (the visible app spent ~15% of a core on them at 60 Hz, measured with bench idle).
DISPLAY_HZ = 30
TEXT_HZ = 4
# Longest stretch drained per frame; after a stall (window hidden, machine busy) older
# audio is skipped rather than making one frame compute seconds of spectrogram.
MAX_DRAIN_SECONDS = 0.5
# While everything on screen is quieter than QUIET_PEAK (-45 dBFS: a quiet room through a
# laptop microphone; speech at arm's length peaks 20-40 dB above it) the plots are drawn
# QUIET_HZ times a second: at 30 Hz the visible app spent ~25% of a core drawing
# background noise (bench idle). The first loud block is drawn at once.
QUIET_PEAK = 10 ** (-45 / 20)
QUIET_HZ = 5


class AudioScope(QWidget):
    """Live view of a mono audio ring buffer."""

    def __init__(self, sample_rate: int = ASR_RATE, seconds: float = 5.0,
                 display_hz: int = DISPLAY_HZ, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample_rate = sample_rate
        self.mel = StreamingLogMel(sample_rate)
        self.waveform = WaveformPlot(sample_rate, seconds)
        self.spectrogram = MelSpectrogramPlot(self.mel, seconds)
        self.meter = LevelMeter()
        self.readout = ElidedLabel("no input")  # a long device error must not widen it
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.waveform, 2)
        layout.addWidget(self.spectrogram, 3)
        bottom = QHBoxLayout()
        bottom.addWidget(self.meter, 1)
        bottom.addWidget(self.readout, 2)
        layout.addLayout(bottom)
        self._ring: RingBuffer | None = None
        self._reader: RingReader | None = None
        self._stats: Callable[[], dict] | None = None
        self._drawn_at = -1  # the ring's frames_written at the last drawn frame
        self._drain = np.zeros(int(sample_rate * MAX_DRAIN_SECONDS), np.float32)
        self._clipped_seen = 0
        self._peak_since_text = 0.0
        self._peak_since_draw = 0.0  # of the audio not yet on screen
        self.display_timer = QTimer(self)
        self.display_timer.setInterval(1000 // display_hz)  # 33 ms for 30 Hz
        self.display_timer.timeout.connect(self.update_display)
        self.text_timer = QTimer(self)
        self.text_timer.setInterval(round(1000 / TEXT_HZ))
        self.text_timer.timeout.connect(self.update_text)
        self.running = False  # started by the owner; the timers run only while visible
        self.redraws = 0
        self._loud_at = -(10 ** 12)  # the ring's frames_written after the last loud block
        self._drawn_time = float("-inf")  # clock() of the last frame that drew
        self.clock = time.monotonic  # replaceable, for tests of the quiet frame rate
        self._watched_window: QWidget | None = None

    def set_source(self, ring: RingBuffer | None, sample_rate: int | None = None,
                   stats: Callable[[], dict] | None = None) -> None:
        """Show ``ring`` (mono, at the scope's rate); ``stats`` feeds the readouts."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(f"the scope shows {self.sample_rate} Hz audio, the ring holds "
                             f"{sample_rate} Hz")
        self._ring = ring
        self._reader = ring.reader() if ring is not None else None
        self._drawn_at = -1
        self.waveform.invalidate()
        self._stats = stats
        self._clipped_seen = int(stats().get("clipped_samples", 0)) if stats else 0

    def start(self) -> None:
        self.running = True
        self._sync_timers()

    def stop(self) -> None:
        self.running = False
        self._sync_timers()

    @property
    def on_screen(self) -> bool:
        """Visible, and not in a minimised window."""
        window = self.window()
        return self.isVisible() and not (window is not None and window.isMinimized())

    def _sync_timers(self) -> None:
        if self.running and self.on_screen:
            if not self.display_timer.isActive():
                self.display_timer.start()
                self.text_timer.start()
                self.update_text()
        else:
            self.display_timer.stop()
            self.text_timer.stop()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        self._watch_window()
        self._sync_timers()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().hideEvent(event)
        self._sync_timers()

    def _watch_window(self) -> None:
        # Minimising does not always reach child widgets as a hide event (it depends on
        # the platform): the window's state changes are watched as well.
        window = self.window()
        if window is not self._watched_window and window is not self:
            if self._watched_window is not None:
                self._watched_window.removeEventFilter(self)
            window.installEventFilter(self)
            self._watched_window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() in (QEvent.Type.WindowStateChange, QEvent.Type.Hide,
                            QEvent.Type.Show):
            QTimer.singleShot(0, self._sync_timers)  # after the state has changed
        return False

    def update_display(self) -> bool:
        """One display frame: drain new audio, update the spectrogram, waveform, meter.

        Returns whether a plot changed (a frame with no new audio redraws nothing).
        """
        reader = self._reader
        if reader is None:
            return False
        if reader.available > len(self._drain):
            reader.position = reader.ring.frames_written - len(self._drain)
        new = reader.read(out=self._drain)
        written = self._ring.frames_written
        if len(new):
            self.spectrogram.append(self.mel.push(new))
            peak = float(max(new.max(), -new.min()))
            self._peak_since_text = max(self._peak_since_text, peak)
            self._peak_since_draw = max(self._peak_since_draw, peak)
            if peak >= QUIET_PEAK:
                self._loud_at = written
        elif not self.spectrogram.dirty and written == self._drawn_at:
            return False  # nothing new since the last frame: draw nothing
        if not self._quiet_frame_due(written):
            return False  # drawn at QUIET_HZ: this frame's audio waits for the next
        if len(new):
            rms = float(np.sqrt(np.dot(new, new) / len(new)))
            self.meter.set_level(peak, rms, clipped=self._clipped(peak))
        drew_spectrogram = self.spectrogram.redraw()
        # Near-silence onto a flat line leaves the line as it is: skip even the decimation.
        quiet_flat = self._peak_since_draw < FLAT_LEVEL and self.waveform.flat_drawn
        self._peak_since_draw = 0.0
        drew_waveform = False if quiet_flat else self.waveform.refresh(self._ring)
        self._drawn_at = written
        drew = drew_spectrogram or drew_waveform
        if drew:
            self._drawn_time = self.clock()
        self.redraws += drew
        return drew

    def _quiet_frame_due(self, written: int) -> bool:
        """Draw this frame? Always while loud audio is on screen, else at QUIET_HZ."""
        on_screen = self.waveform.seconds * self.sample_rate
        if written - self._loud_at <= on_screen:
            return True
        return self.clock() - self._drawn_time >= 1.0 / QUIET_HZ

    def _clipped(self, peak: float) -> bool:
        # The capture counts clipping on the raw device samples, before mixing and
        # resampling can hide it; without stats, judge by the samples we see.
        if self._stats is None:
            return peak >= CLIP_LEVEL
        clipped = int(self._stats().get("clipped_samples", 0))
        fresh, self._clipped_seen = clipped > self._clipped_seen, clipped
        return fresh

    def update_text(self) -> None:
        stats = self._stats() if self._stats else {}
        if stats.get("error"):
            self.readout.setText(f"⚠ {stats['error']}")
            return
        if self._ring is None:
            self.readout.setText("no input")
            return
        parts = []
        if stats.get("device"):
            parts.append(f"{stats['device']} · {stats['samplerate']:g} Hz · "
                         f"{stats['channels']} ch")
        if stats.get("running") is False:  # push-to-talk between turns (Session)
            parts.append("resting between turns: the talk button wakes it")
        else:
            parts.append(f"peak {to_db(self._peak_since_text):.0f} dBFS")
        lost = stats.get("input_overflows", 0) + stats.get("dropped_frames", 0)
        if lost:
            parts.append(f"overflows {lost}")
        if self.meter.clipping:
            parts.append("CLIPPING")
        self._peak_since_text = 0.0
        self.readout.setText(" · ".join(parts))
