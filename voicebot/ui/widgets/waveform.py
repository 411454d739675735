"""A scrolling waveform of the last few seconds, peak-decimated to the pixel width."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from voicebot.audio.ring_buffer import RingBuffer

SECONDS = 5.0
AXIS_WIDTH = 44  # pixels of the left axis; shared with the spectrogram to align time
# A waveform whose peaks stay below this is a flat line on screen (a pixel of a 200-pixel
# plot of -1..1 is 0.01): once the whole plot is such a line, it is not drawn again.
FLAT_LEVEL = 1e-3


def peak_decimate(samples: np.ndarray, bins: int, out_min: np.ndarray,
                  out_max: np.ndarray) -> int:
    """Min and max of ``bins`` equal slices of ``samples`` into the given arrays.

    Drawing min and max per pixel column keeps every peak visible (a click one sample
    long still shows), unlike plain subsampling. Returns how many bins were filled
    (fewer when there are fewer samples than bins); ``samples`` must hold a whole number
    of slices, newest last.
    """
    bins = min(bins, len(samples))
    if bins == 0:
        return 0
    blocks = samples[len(samples) - bins * (len(samples) // bins):].reshape(bins, -1)
    np.min(blocks, axis=1, out=out_min[:bins])
    np.max(blocks, axis=1, out=out_max[:bins])
    return bins


class WaveformPlot(pg.PlotWidget):
    """Shows the newest ``seconds`` of a mono ring buffer; call :meth:`refresh` per frame."""

    def __init__(self, sample_rate: int, seconds: float = SECONDS, parent=None) -> None:
        super().__init__(parent=parent)
        self.sample_rate = sample_rate
        self.seconds = seconds
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setXRange(-seconds, 0, padding=0)
        self.setYRange(-1, 1, padding=0.02)
        left = self.getPlotItem().getAxis("left")
        left.setTicks([[(-1.0, "-1"), (0.0, "0"), (1.0, "1")]])
        left.setWidth(AXIS_WIDTH)  # same as the spectrogram's, so the time axes line up
        self.setLabel("bottom", "seconds")
        # A bare PlotCurveItem: PlotDataItem's extra layers (downsampling, clipping,
        # bounds bookkeeping) cost more than they save on data already decimated here.
        self.curve = pg.PlotCurveItem(pen=pg.mkPen("#4fc3f7", width=1), skipFiniteCheck=True)
        self.addItem(self.curve)
        self._bins = 0
        self._last_written = -1
        self._flat_drawn = False  # the curve on screen is a flat line across the plot
        self._resize_buffers(600)

    def _resize_buffers(self, bins: int) -> None:
        self._bins = max(16, int(bins))
        self._min = np.zeros(self._bins, np.float32)
        self._max = np.zeros(self._bins, np.float32)
        self._x = np.zeros(2 * self._bins, np.float64)
        self._y = np.zeros(2 * self._bins, np.float32)
        # Bin i of n counts n-1-i bins back from the newest: the tail of this countdown.
        self._bins_back = np.arange(self._bins - 1, -1, -1, dtype=np.float64)
        self._last_written = -1
        self._flat_drawn = False

    def invalidate(self) -> None:
        """Forget what is drawn (a new source): the next refresh draws."""
        self._last_written = -1
        self._flat_drawn = False

    @property
    def flat_drawn(self) -> bool:
        """The curve on screen is a flat line across the whole plot."""
        return self._flat_drawn

    def pixel_width(self) -> int:
        return int(self.getPlotItem().getViewBox().width()) or 600

    def refresh(self, ring: RingBuffer) -> bool:
        """Redraw from ``ring`` if it has new samples; returns whether it redrew."""
        if self.pixel_width() != self._bins:
            self._resize_buffers(self.pixel_width())
        written = ring.frames_written
        span = int(self.seconds * self.sample_rate)
        per_bin = max(1, -(-span // self._bins))  # ceil: the whole span fits in the bins
        # Align the bins to absolute sample positions so a column keeps its content as
        # the plot scrolls (no shimmering); the newest < per_bin samples wait a frame.
        aligned = written - written % per_bin
        if aligned == self._last_written:
            return False
        self._last_written = aligned
        newest = written - aligned
        available = min(ring.capacity, written, span) - newest
        available -= available % per_bin
        if available <= 0:
            self.curve.setData([], [])
            self._flat_drawn = False
            return True
        view = ring.latest(available + newest)[:available]
        bins = peak_decimate(view, available // per_bin, self._min, self._max)
        # Across the whole plot and below FLAT_LEVEL: the same line as last frame.
        flat = (min(ring.capacity, written) >= span and self._max[:bins].max() < FLAT_LEVEL
                and self._min[:bins].min() > -FLAT_LEVEL)
        if flat and self._flat_drawn:
            return False
        self._flat_drawn = flat
        x = self._x[:2 * bins]
        y = self._y[:2 * bins]
        # Bin i ends at (aligned - (bins - 1 - i) * per_bin); plot it at its end time.
        np.multiply(self._bins_back[self._bins - bins:], -per_bin / self.sample_rate, out=x[0::2])
        x[0::2] -= newest / self.sample_rate
        x[1::2] = x[0::2]
        y[0::2] = self._min[:bins]
        y[1::2] = self._max[:bins]
        self.curve.setData(x, y, skipFiniteCheck=True)
        return True
