"""Render assets/icons/voicebot.svg to the PNG sizes desktops and installers want.

Run after editing the SVG: `.venv/bin/python packaging/make_icons.py`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SIZES = (16, 32, 48, 64, 128, 256, 512)


def main() -> int:
    icons = Path(__file__).resolve().parent.parent / "assets" / "icons"
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs an application for fonts)
    renderer = QSvgRenderer(str(icons / "voicebot.svg"))
    if not renderer.isValid():
        print("invalid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(icons / f"voicebot-{size}.png"))
    print(f"wrote {len(SIZES)} PNGs to {icons}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
