"""Chat bubbles for both sides of the conversation."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

USER_STYLE = "background:#2b6cb0; color:white; border-radius:12px; padding:8px 12px;"
BOT_STYLE = "background:#edf2f7; color:#1a202c; border-radius:12px; padding:8px 12px;"
META_STYLE = "color:#718096; font-size:11px;"
WELCOME_STYLE = "color:#4a5568; font-size:14px; padding:24px;"


class Bubble(QWidget):
    """One message: the text, and a small line under it (timings, alternatives)."""

    def __init__(self, text: str, from_user: bool) -> None:
        super().__init__()
        self.from_user = from_user
        self.text_label = QLabel(text)
        self.text_label.setWordWrap(True)
        self.text_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text_label.setStyleSheet(USER_STYLE if from_user else BOT_STYLE)
        self.text_label.setSizePolicy(QSizePolicy.Policy.Preferred,
                                      QSizePolicy.Policy.Minimum)
        self.text_label.setMaximumWidth(560)
        self.meta_label = QLabel("")
        self.meta_label.setStyleSheet(META_STYLE)
        self.meta_label.setWordWrap(True)
        self.meta_label.hide()
        column = QVBoxLayout()
        column.setSpacing(2)
        column.addWidget(self.text_label)
        column.addWidget(self.meta_label)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        if from_user:
            row.addStretch(1)
            row.addLayout(column)
            column.setAlignment(self.meta_label, Qt.AlignmentFlag.AlignRight)
        else:
            row.addLayout(column)
            row.addStretch(1)

    def text(self) -> str:
        return self.text_label.text()

    def set_text(self, text: str) -> None:
        self.text_label.setText(text)

    def append_text(self, piece: str) -> None:
        self.text_label.setText(self.text_label.text() + piece)

    def set_meta(self, text: str, tooltip: str = "") -> None:
        self.meta_label.setText(text)
        self.meta_label.setToolTip(tooltip)
        self.meta_label.setVisible(bool(text))


class ChatView(QScrollArea):
    """A scrolling column of bubbles that follows the newest message."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._column_widget = QWidget()
        self._column = QVBoxLayout(self._column_widget)
        # What an empty conversation shows: how to talk, the models, the Training tab.
        self.welcome = QLabel("")
        self.welcome.setWordWrap(True)
        self.welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome.setStyleSheet(WELCOME_STYLE)
        self._column.addStretch(1)  # few bubbles sit at the bottom, as in a chat
        self._column.addWidget(self.welcome, 100)  # while shown, it takes the middle
        self.setWidget(self._column_widget)
        self.bubbles: list[Bubble] = []

    def set_welcome(self, paragraphs: list[str]) -> None:
        """The text shown while there are no bubbles (one paragraph per item)."""
        self.welcome.setText("\n\n".join(paragraphs))
        self.welcome.setVisible(not self.bubbles and bool(paragraphs))

    def add_bubble(self, text: str, from_user: bool) -> Bubble:
        bubble = Bubble(text, from_user)
        self.welcome.hide()
        self._column.addWidget(bubble)
        self.bubbles.append(bubble)
        self.scroll_to_end()
        return bubble

    def clear(self) -> None:
        for bubble in self.bubbles:
            bubble.setParent(None)
            bubble.deleteLater()
        self.bubbles.clear()
        self.welcome.setVisible(bool(self.welcome.text()))

    def scroll_to_end(self) -> None:
        # After layout has placed the new bubble, not before.
        QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(
            self.verticalScrollBar().maximum()))
