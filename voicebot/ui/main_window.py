"""The main window: Conversation and Training tabs, status bar, persisted geometry."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from voicebot import APP_DISPLAY_NAME, __version__
from voicebot.settings import Settings, load_settings, save_settings

log = logging.getLogger(__name__)


def _placeholder(text: str) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    return page


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.resize(1100, 760)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.conversation_tab = _placeholder(
            "Conversation\n\nPush-to-talk conversation arrives with the conversation pipeline.")
        self.training_tab = _placeholder(
            "Training\n\nThe voice-adaptation wizard arrives with the training studio.")
        self.tabs.addTab(self.conversation_tab, "Conversation")
        self.tabs.addTab(self.training_tab, "Training")
        self.setCentralWidget(self.tabs)
        self._build_menu()
        self.statusBar().showMessage(f"{APP_DISPLAY_NAME} {__version__} — ready")
        self._restore_state()

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _about(self) -> None:
        QMessageBox.about(self, f"About {APP_DISPLAY_NAME}",
                          f"{APP_DISPLAY_NAME} {__version__}\n\nAn offline voice chatbot "
                          "with a voice-adaptation studio.")

    def _restore_state(self) -> None:
        ui = self.settings.ui
        if ui.geometry:
            self.restoreGeometry(QByteArray.fromBase64(ui.geometry.encode("ascii")))
        if ui.window_state:
            self.restoreState(QByteArray.fromBase64(ui.window_state.encode("ascii")))
        if 0 <= ui.last_tab < self.tabs.count():
            self.tabs.setCurrentIndex(ui.last_tab)

    def save_state(self) -> None:
        ui = self.settings.ui
        ui.geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        ui.window_state = bytes(self.saveState().toBase64().data()).decode("ascii")
        ui.last_tab = self.tabs.currentIndex()
        try:
            save_settings(self.settings)
        except OSError as exc:
            log.warning("could not save settings: %s", exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt naming)
        self.save_state()
        super().closeEvent(event)
