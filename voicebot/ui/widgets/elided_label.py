"""One-line text that never widens its window: elided to the width it gets, the whole
text in its tooltip; and a status bar whose messages are shown that way.

A plain ``QLabel`` asks its layout for the width of all its text, so a 300-character
error message would make the main window wider than the screen. ``ElidedLabel`` asks
for nothing (its width comes from the layout), draws what fits with "…" at the end,
and shows the full text as a tooltip when it had to cut it.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget


class ElidedLabel(QLabel):
    """A single-line label that elides its text to its width (full text: ``text()``)."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(0)
        self.setText(text)

    def text(self) -> str:  # the whole text, not what fits
        return self._full

    def shown_text(self) -> str:
        """What is drawn now (with "…" when cut)."""
        return super().text()

    @property
    def elided(self) -> bool:
        return self.shown_text() != self._full

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        self._full = " ".join(str(text).split())  # one line: newlines would grow it
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        metrics = QFontMetrics(self.font())
        return QSize(min(metrics.horizontalAdvance(self._full), 400) + 4,
                     super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(0, self.contentsRect().width())
        shown = QFontMetrics(self.font()).elidedText(self._full, self._mode, width)
        if shown != super().text():
            super().setText(shown)
        self.setToolTip(self._full if shown != self._full else "")


class ElidedStatusBar(QStatusBar):
    """A ``QStatusBar`` whose messages are drawn by an :class:`ElidedLabel`.

    ``showMessage``, ``clearMessage``, ``currentMessage`` and ``messageChanged`` behave as
    in ``QStatusBar`` (a timeout clears the message), so callers need not change; only
    the message can no longer widen the window, and its full text is in the tooltip.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = ElidedLabel()
        self.addWidget(self.label, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clearMessage)

    def showMessage(self, message: str, timeout: int = 0) -> None:  # noqa: N802 (Qt API)
        self._timer.stop()
        changed = message != self.label.text()
        self.label.setText(message)
        if timeout > 0:
            self._timer.start(timeout)
        if changed:
            self.messageChanged.emit(self.label.text())

    def clearMessage(self) -> None:  # noqa: N802 (Qt API)
        self.showMessage("")

    def currentMessage(self) -> str:  # noqa: N802 (Qt API)
        return self.label.text()
