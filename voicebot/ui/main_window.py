"""The main window: Conversation and Training tabs, status bar, persisted geometry."""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QTabWidget,
)

from voicebot import APP_DISPLAY_NAME, __version__
from voicebot.settings import Settings, load_settings, save_settings
from voicebot.ui.conversation_tab import ConversationTab
from voicebot.ui.settings_dialog import SettingsDialog
from voicebot.ui.training_tab import TrainingTab
from voicebot.ui.widgets.elided_label import ElidedStatusBar

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, load_models: bool = True) -> None:
        super().__init__()
        self.settings = settings or load_settings()
        self.setWindowTitle(APP_DISPLAY_NAME)
        self.resize(1100, 760)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.conversation_tab = ConversationTab(self.settings, load_models=load_models)
        self.training_tab = TrainingTab(self.settings)
        self.tabs.addTab(self.conversation_tab, "Conversation")
        self.tabs.addTab(self.training_tab, "Training")
        # A voice chosen in the studio is loaded by the conversation, which keeps its
        # voice (and the settings theirs) if the new one fails; the studio hears back.
        self.training_tab.voice_requested.connect(self.conversation_tab.request_voice)
        self.conversation_tab.voice_changed.connect(self.training_tab.show_voice_result)
        self.conversation_tab.voice_changed.connect(self._voice_changed)
        # A recognition adapter chosen in the studio takes effect at once.
        self.training_tab.adapter_chosen.connect(lambda _path: self._settings_changed())
        # Whisper checks the studio's takes: the one the conversation loaded, when it has.
        self.conversation_tab.engines_ready.connect(self._share_recognizer)
        self.setCentralWidget(self.tabs)
        # Messages are elided to the window's width (full text in the tooltip): a long
        # error must never make the window wider than the screen.
        self.setStatusBar(ElidedStatusBar(self))
        self._build_menu()
        # The status bar says what the conversation's state pill and status line say; a
        # passing message (an export's) gives way to it again.
        self.conversation_tab.state_text_changed.connect(self.statusBar().showMessage)
        self.statusBar().messageChanged.connect(self._show_state_when_blank)
        self.statusBar().showMessage(self.conversation_tab.state_text())
        self._restore_state()

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for label, fmt in (("Export conversation as &Markdown…", "md"),
                           ("Export conversation as &JSON…", "json")):
            action = QAction(label, self)
            action.triggered.connect(lambda _=False, f=fmt: self.export_history(f))
            file_menu.addAction(action)
        clear = QAction("&Clear conversation", self)
        clear.triggered.connect(self._confirm_clear)
        file_menu.addAction(clear)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        preferences = QAction("&Settings…", self)
        preferences.setShortcut(QKeySequence.StandardKey.Preferences)
        preferences.triggered.connect(self.open_settings)
        edit_menu.addAction(preferences)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def export_history(self, fmt: str, path: str | None = None) -> str | None:
        from voicebot.pipeline.history import export_json, export_markdown

        if path is None:
            name_filter = "Markdown (*.md)" if fmt == "md" else "JSON (*.json)"
            path, _ = QFileDialog.getSaveFileName(self, "Export conversation",
                                                  f"conversation.{fmt}", name_filter)
            if not path:
                return None
        turns = self.conversation_tab.saved_turns
        text = export_markdown(turns) if fmt == "md" else export_json(turns)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        self.statusBar().showMessage(f"Exported {len(turns)} turns to {path}", 5000)
        return path

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()
        return dialog

    def apply_settings(self, settings: Settings) -> None:
        # One Settings object is shared by the window and its tabs: update it in place.
        # The voice is the exception: it is written only once it has loaded (by the
        # conversation tab), so a voice that cannot load never sticks.
        for section in ("audio", "asr", "chat"):
            setattr(self.settings, section, getattr(settings, section))
        voice = settings.tts.voice if settings.tts != self.settings.tts else None
        try:
            save_settings(self.settings)
        except OSError as exc:
            QMessageBox.warning(self, "Settings", f"Could not save the settings: {exc}")
        self.conversation_tab.apply_settings(self.settings, voice=voice)

    def _show_state_when_blank(self, message: str) -> None:
        if not message:
            self.statusBar().showMessage(self.conversation_tab.state_text())

    def _voice_changed(self, voice: str, ok: bool, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    def _share_recognizer(self) -> None:
        engines = self.conversation_tab.engines
        self.training_tab.set_recognizer(getattr(engines, "recognizer", None))

    def _settings_changed(self) -> None:
        """The training tab changed (and saved) the shared settings: reload what uses them."""
        self.conversation_tab.apply_settings(self.settings)

    def _confirm_clear(self) -> None:
        answer = QMessageBox.question(self, "Clear conversation",
                                      "Forget the whole conversation history?")
        if answer == QMessageBox.StandardButton.Yes:
            self.conversation_tab.clear_history()

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
        if not self.training_tab.confirm_close():
            event.ignore()
            return
        self.save_state()
        self.training_tab.shutdown()
        self.conversation_tab.shutdown()
        super().closeEvent(event)
