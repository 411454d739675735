"""Uncaught exceptions in the GUI are logged and shown, never lost."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from voicebot.logging_setup import log_file

log = logging.getLogger("voicebot.ui")


def show_error(title: str, message: str, details: str = "") -> None:
    """A modal error dialog, or only the log when there is no GUI to show it in."""
    app = QApplication.instance()
    if app is None or app.platformName() in ("offscreen", "minimal"):
        return
    box = QMessageBox(QMessageBox.Icon.Critical, title, message)
    if details:
        box.setDetailedText(details)
    box.exec()


def _excepthook(exc_type: type[BaseException], exc: BaseException,
                tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        QApplication.quit()
        return
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("uncaught exception\n%s", details)
    message = (f"{exc_type.__name__}: {exc}\n\nThe app keeps running. The details are in "
               f"the log file:\n{log_file()}")
    # Show the dialog from the event loop, not from inside whatever code raised.
    QTimer.singleShot(0, lambda: show_error("Voicebot: unexpected error", message, details))


def install_excepthook() -> None:
    sys.excepthook = _excepthook
