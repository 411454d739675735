"""`voicebot gui`: create the QApplication and show the main window."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a screenshot of the main window to PNG and quit")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS",
                        help="close the window after this many seconds (for smoke tests)")


def run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from voicebot.ui.app import create_app
    from voicebot.ui.errors import install_excepthook
    from voicebot.ui.main_window import MainWindow

    app = create_app(sys.argv[:1])  # noqa: F841 (kept alive for the event loop)
    install_excepthook()
    window = MainWindow()
    window.show()
    if args.screenshot:
        def grab() -> None:
            window.grab().save(args.screenshot)
            log.info("screenshot saved to %s", args.screenshot)
            window.close()
        QTimer.singleShot(800, grab)
    if args.quit_after:
        QTimer.singleShot(int(args.quit_after * 1000), window.close)
    status = QApplication.exec()
    _leave_if_still_loading(status)
    return status


def _leave_if_still_loading(status: int) -> None:
    """Quit at once when a model is still loading on a daemon thread (a window closed
    within a second of opening): the interpreter's normal shutdown tears native
    libraries down under that thread, and ONNX Runtime then aborted the process
    ("terminate called without an active exception": 2 of 6 `gui --screenshot` runs on
    2026-12-07, 0 of 8 with this). Logs and output are flushed first; settings were
    saved on close."""
    import os
    import threading

    if not any(t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
