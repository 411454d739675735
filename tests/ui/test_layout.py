"""Layout that holds: long messages are elided (full text in the tooltip) and never
widen the main window."""

from __future__ import annotations

import pytest

from voicebot.ui.widgets.elided_label import ElidedLabel, ElidedStatusBar

MAX_WIDTH = 1280
LONG_ERROR = ("Could not load the models: the speech recogniser whisper-tiny-en failed "
              "to load from /home/someone/.local/share/voicebot/models/whisper-tiny-en "
              "because the file model.safetensors is damaged (size 12 bytes, expected "
              "78 MB); run voicebot models verify whisper-tiny-en, then voicebot models "
              "download whisper-tiny-en to fetch it again, or pick another model.")


def test_the_message_is_300_characters():
    assert len(LONG_ERROR) >= 300


@pytest.fixture
def window(qtbot):
    from voicebot.ui.main_window import MainWindow

    w = MainWindow(load_models=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_a_long_status_message_keeps_the_window_narrow(qtbot, window):
    bar = window.statusBar()
    assert isinstance(bar, ElidedStatusBar)
    width_before = window.width()
    bar.showMessage(LONG_ERROR)
    qtbot.wait(50)  # let the layouts settle
    assert window.width() <= MAX_WIDTH and window.width() == width_before
    assert window.minimumSizeHint().width() <= MAX_WIDTH
    assert bar.currentMessage() == LONG_ERROR
    assert bar.label.elided and bar.label.shown_text().endswith("…")
    assert bar.label.toolTip() == LONG_ERROR
    # Narrowed as far as the window goes: still one line, still elided; the message
    # adds nothing to the narrowest width.
    narrowest = window.minimumSizeHint().width()
    bar.clearMessage()
    qtbot.wait(20)
    assert window.minimumSizeHint().width() == narrowest
    bar.showMessage(LONG_ERROR)
    window.resize(narrowest, window.height())
    qtbot.wait(50)
    assert window.width() == narrowest and bar.label.elided


def test_a_timed_message_gives_way_to_the_state_text(qtbot, window):
    bar = window.statusBar()
    state = bar.currentMessage()
    seen = []
    bar.messageChanged.connect(seen.append)
    bar.showMessage(LONG_ERROR, 50)
    qtbot.waitUntil(lambda: bar.currentMessage() == state)
    assert seen[0] == LONG_ERROR and "" in seen


def test_elided_label_basics(qtbot):
    label = ElidedLabel("short")
    qtbot.addWidget(label)
    label.resize(400, 30)
    label.show()
    assert label.text() == "short" and not label.elided and label.toolTip() == ""
    label.setText("line one\nline two  " + "word " * 100)
    assert "\n" not in label.text()  # one line, whatever it is given
    assert label.elided and label.toolTip() == label.text()
    assert label.minimumSizeHint().width() == 0 and label.sizeHint().width() <= 404
    label.resize(4000, 30)
    qtbot.wait(10)
    assert not label.elided and label.toolTip() == ""


def test_a_long_capture_error_does_not_widen_the_scope(qtbot):
    from voicebot.ui.widgets.scope import AudioScope

    scope = AudioScope()
    qtbot.addWidget(scope)
    narrowest = scope.minimumSizeHint().width()
    scope.set_source(None, stats=lambda: {"error": LONG_ERROR})
    scope.update_text()
    assert scope.minimumSizeHint().width() == narrowest < 600
    assert scope.readout.text().endswith(LONG_ERROR)


def test_a_long_error_in_the_conversation_status_line_keeps_the_window_narrow(qtbot, window):
    window.conversation_tab.status_label.setText(LONG_ERROR)
    qtbot.wait(50)
    assert window.width() <= MAX_WIDTH
    assert window.conversation_tab.status_label.toolTip() == LONG_ERROR
