"""A scrolling log-mel spectrogram: an ImageItem with a fixed color map and dB range."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from voicebot.audio.features import StreamingLogMel
from voicebot.ui.widgets.waveform import AXIS_WIDTH

SECONDS = 5.0
# Fixed levels keep colors comparable over time (auto-levels would make silence look
# like speech). 0 dB is a full-scale sine; -100 dB is the power floor of the features.
DB_RANGE = (-90.0, -10.0)
COLOR_MAP = "inferno"
TICK_HZ = (250, 500, 1000, 2000, 4000, 8000)  # candidates; only well-spaced ones show
MIN_TICK_GAP_PX = 24  # between two frequency labels (a label is ~14 px high)
MIN_TICK_GAP_BANDS = 10  # ... and in mel bands, whatever the height


def frequency_ticks(mel: StreamingLogMel, pixels_per_band: float = 0.0) -> list[tuple[float, str]]:
    """(band position, label) of the frequency ticks, spaced at least MIN_TICK_GAP_PX
    (at ``pixels_per_band``) and MIN_TICK_GAP_BANDS apart, chosen from the top down:
    on the mel scale 250 and 500 Hz sit 6 bands apart, and their labels overlapped."""
    gap = MIN_TICK_GAP_BANDS
    if pixels_per_band > 0:
        gap = max(gap, MIN_TICK_GAP_PX / pixels_per_band)
    # A label centred on the top edge is cut in half (8 kHz is the top at 16 kHz): keep
    # each label half a label's height inside the plot.
    top = mel.n_mels - (MIN_TICK_GAP_PX / 2 / pixels_per_band if pixels_per_band > 0 else 2)
    ticks: list[tuple[float, str]] = []
    for hz in sorted((hz for hz in TICK_HZ if hz <= mel.fmax), reverse=True):
        band = mel.band_of(hz) + 0.5
        if band > top:
            continue
        if not ticks or ticks[-1][0] - band >= gap:
            ticks.append((band, f"{hz // 1000}k" if hz >= 1000 else str(hz)))
    return ticks[::-1]


class MelSpectrogramPlot(pg.PlotWidget):
    """Shows the newest ``seconds`` of log-mel frames; feed it with :meth:`append`.

    Each new column is coloured once, when it arrives, into a ring of RGBA pixels, and
    the image handed to pyqtgraph is already RGBA: Qt draws that several times faster
    than an 8-bit indexed image, which it would convert on every paint.
    """

    def __init__(self, mel: StreamingLogMel, seconds: float = SECONDS,
                 db_range: tuple[float, float] = DB_RANGE, parent=None) -> None:
        super().__init__(parent=parent)
        self.mel = mel
        self.db_range = db_range
        self.n_frames = round(seconds / mel.hop_seconds)
        cap2 = 2 * self.n_frames
        # Double-written rings (like RingBuffer): the newest n_frames columns are always
        # one contiguous slice, so scrolling never copies or rolls the image.
        self._db = np.full((cap2, mel.n_mels), db_range[0], np.float32)
        self._rgba = np.zeros((mel.n_mels, cap2, 4), np.uint8)
        self._lut = pg.colormap.get(COLOR_MAP).getLookupTable(nPts=256, alpha=True)
        self._rgba[:] = self._lut[0]
        self._scale = 255.0 / (db_range[1] - db_range[0])
        self._frames = 0
        # Trailing columns at the floor colour; once they fill the plot, more of them
        # leave the image as it is (digital silence, a muted microphone): not dirty.
        self._floor_run = self.n_frames
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image_item)
        self.setXRange(-seconds, 0, padding=0)
        self.setYRange(0, mel.n_mels, padding=0)
        left = self.getPlotItem().getAxis("left")
        left.setTicks([frequency_ticks(mel)])
        left.setWidth(AXIS_WIDTH)
        self.setLabel("left", "Hz")
        self.setLabel("bottom", "seconds")
        self._dirty = True
        self.redraw()
        # After the first image: setRect scales by the image size it sees now.
        self.image_item.setRect(QRectF(-seconds, 0, seconds, mel.n_mels))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        plot = self.getPlotItem()
        if plot is None or not hasattr(self, "mel"):
            return  # pyqtgraph resizes the widget while it is being built
        height = plot.getViewBox().height()
        if height > 0:
            plot.getAxis("left").setTicks(
                [frequency_ticks(self.mel, height / self.mel.n_mels)])

    def _window(self) -> slice:
        end = self._frames % self.n_frames + self.n_frames
        return slice(end - self.n_frames, end)

    @property
    def frames_shown(self) -> np.ndarray:
        """The image now on screen as dB: ``n_frames x n_mels``, oldest column first."""
        return self._db[self._window()]

    @property
    def pixels_shown(self) -> np.ndarray:
        """The image now on screen as RGBA: ``n_mels x n_frames x 4``, band 0 first."""
        return self._rgba[:, self._window()]

    def append(self, frames: np.ndarray) -> None:
        """Add log-mel frames (``k x n_mels`` dB, oldest first) at the right edge."""
        if len(frames) > self.n_frames:
            self._frames += len(frames) - self.n_frames
            frames = frames[-self.n_frames:]
        n = len(frames)
        if n == 0:
            return
        index = np.clip((frames - self.db_range[0]) * self._scale, 0, 255).astype(np.uint8)
        coloured = np.flatnonzero(index.any(axis=1))  # columns above the floor colour
        unchanged = self._floor_run >= self.n_frames and len(coloured) == 0
        self._floor_run = n - 1 - coloured[-1] if len(coloured) else self._floor_run + n
        colors = self._lut[index.T]  # n_mels x n x 4
        cap = self.n_frames
        start = self._frames % cap
        first = min(n, cap - start)
        for offset in (0, cap):
            self._db[start + offset:start + offset + first] = frames[:first]
            self._db[offset:offset + n - first] = frames[first:]
            self._rgba[:, start + offset:start + offset + first] = colors[:, :first]
            self._rgba[:, offset:offset + n - first] = colors[:, first:]
        self._frames += n
        self._dirty = self._dirty or not unchanged

    @property
    def dirty(self) -> bool:
        """Frames arrived since the last redraw."""
        return self._dirty

    def redraw(self) -> bool:
        """Push the image to the scene if frames arrived since the last redraw."""
        if not self._dirty:
            return False
        self.image_item.setImage(self.pixels_shown, autoLevels=False, levels=None)
        self._dirty = False
        return True
