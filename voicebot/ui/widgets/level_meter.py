"""A level meter: peak bar with a falling hold mark, RMS bar and a latched clip light."""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0
CLIP_HOLD_SECONDS = 1.5
PEAK_FALL_DB_PER_S = 20.0


def to_db(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 1e-6 else -120.0


class LevelMeter(QWidget):
    """Horizontal meter in dBFS. Call :meth:`set_level` from the display timer."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.peak_db = FLOOR_DB
        self.rms_db = FLOOR_DB
        self.hold_db = FLOOR_DB
        self._hold_time = 0.0
        self._clip_until = 0.0
        self._shown: tuple = ()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(240, 14)

    @property
    def clipping(self) -> bool:
        """True while the clip light is on (for 1.5 s after the last clipped sample)."""
        return time.monotonic() < self._clip_until

    def set_level(self, peak: float, rms: float, clipped: bool = False) -> None:
        now = time.monotonic()
        self.peak_db = max(FLOOR_DB, to_db(peak))
        self.rms_db = max(FLOOR_DB, to_db(rms))
        fallen = self.hold_db - PEAK_FALL_DB_PER_S * (now - self._hold_time)
        if self.peak_db >= fallen:
            self.hold_db, self._hold_time = self.peak_db, now
        if clipped:
            self._clip_until = now + CLIP_HOLD_SECONDS
        # Repaint only when what is drawn changes (at half-dB resolution).
        # The falling hold stops at the floor, so silence repaints nothing.
        shown = (round(self.peak_db * 2), round(self.rms_db * 2),
                 round(max(FLOOR_DB, fallen) * 2),
                 self.clipping)
        if shown != self._shown:
            self._shown = shown
            self.update()

    def _x(self, db: float, width: float) -> float:
        return width * (min(0.0, max(FLOOR_DB, db)) - FLOOR_DB) / -FLOOR_DB

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        clip_w = self.height()
        width = self.width() - clip_w - 4
        h = self.height()
        painter.fillRect(QRectF(0, 0, width, h), QColor("#202428"))
        peak_color = QColor("#e0a030") if self.peak_db > -6 else QColor("#3fb950")
        painter.fillRect(QRectF(0, 0, self._x(self.peak_db, width), h), peak_color.darker(130))
        painter.fillRect(QRectF(0, h * 0.25, self._x(self.rms_db, width), h * 0.5), peak_color)
        hold_x = self._x(self.hold_db - PEAK_FALL_DB_PER_S * (time.monotonic() - self._hold_time),
                         width)
        painter.fillRect(QRectF(hold_x - 1, 0, 2, h), QColor("#f0f0f0"))
        light = QColor("#ff3030") if self.clipping else QColor("#402020")
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(light)
        painter.drawRoundedRect(QRectF(width + 4, 0, clip_w, h), 3, 3)
        painter.end()
