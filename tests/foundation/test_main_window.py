"""The main window opens offscreen, shows its tabs and remembers its geometry."""

from __future__ import annotations

import subprocess
import sys

from voicebot.settings import load_settings


def test_main_window_opens_and_persists_state(qtbot):
    from voicebot.ui.main_window import MainWindow

    window = MainWindow(load_models=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == [
        "Conversation", "Training"]
    window.resize(700, 500)  # within the offscreen screen (800x600)
    size = (window.width(), window.height())  # the tabs' minimum width may widen it
    window.tabs.setCurrentIndex(1)
    window.close()
    saved = load_settings()
    assert saved.ui.geometry and saved.ui.last_tab == 1

    again = MainWindow(load_models=False)
    qtbot.addWidget(again)
    again.show()
    assert again.tabs.currentIndex() == 1
    assert (again.width(), again.height()) == size
    again.close()


def test_gui_command_starts_and_screenshots(tmp_path):
    png = tmp_path / "window.png"
    result = subprocess.run(
        [sys.executable, "-m", "voicebot", "gui", "--screenshot", str(png)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull() and image.width() >= 600 and image.height() >= 400


def test_uncaught_exception_is_logged(qtbot, caplog):
    from voicebot.ui.errors import install_excepthook

    install_excepthook()
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = sys.__excepthook__
    assert "boom in a slot" in caplog.text
