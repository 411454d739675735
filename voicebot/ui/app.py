"""The QApplication: name, icon, style."""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from voicebot import APP_DISPLAY_NAME, APP_NAME, __version__
from voicebot.paths import assets_dir


def app_icon() -> QIcon:
    icon = QIcon()
    icons = assets_dir() / "icons"
    for size in (16, 32, 48, 64, 128, 256, 512):
        png = icons / f"voicebot-{size}.png"
        if png.exists():
            icon.addFile(str(png))
    return icon


def create_app(argv: list[str]) -> QApplication:
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    return app
