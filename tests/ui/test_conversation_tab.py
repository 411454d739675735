"""The Conversation tab, offscreen, with the real engines and the virtual audio devices."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from voicebot.pipeline.history import load_history
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings

pytestmark = pytest.mark.audio


@pytest.fixture
def window(qtbot, engines, virtual_audio):
    from voicebot.ui.main_window import MainWindow

    settings = Settings()
    settings.audio.input_device = "vmic"
    settings.audio.output_device = "vspeaker"
    win = MainWindow(settings, load_models=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.conversation_tab.use_engines(engines)
    yield win
    win.close()


def _wait_idle(qtbot, tab, timeout_ms=60_000):
    qtbot.waitUntil(lambda: tab.conversation.state is TurnState.IDLE
                    and tab.conversation.turns and tab.conversation.turns[-1].finished.is_set(),
                    timeout=timeout_ms)


def test_typed_message_gets_a_reply_and_is_saved(qtbot, window):
    tab = window.conversation_tab
    assert tab.text_box.isEnabled() and tab.talk_button.isEnabled()
    states = []
    tab.bridge.state_changed_signal.connect(states.append)
    qtbot.keyClicks(tab.text_box, "Hello, who are you?")
    qtbot.keyClick(tab.text_box, Qt.Key.Key_Return)
    _wait_idle(qtbot, tab)
    qtbot.waitUntil(lambda: len(tab.chat_view.bubbles) >= 2)
    user, bot = tab.chat_view.bubbles[-2:]
    assert user.from_user and user.text() == "Hello, who are you?"
    assert not bot.from_user and bot.text().strip()
    # The latency breakdown is shown once the GUI thread has handled the turn's end (the
    # turn's finished event is set on the worker thread, the bubble is painted after).
    qtbot.waitUntil(lambda: "total" in bot.meta_label.text(), timeout=5000)
    assert TurnState.THINKING in states and TurnState.SPEAKING in states
    assert tab.state_label.text() == "Ready"
    saved = load_history()
    assert saved[-1]["user"] == "Hello, who are you?" and saved[-1]["reply"]


@pytest.mark.parametrize("how", ["button", "space"])
def test_push_to_talk(qtbot, window, virtual_audio, question_audio, how):
    tab = window.conversation_tab
    if how == "button":
        press, release = tab.talk_button.pressed.emit, tab.talk_button.released.emit
    else:
        tab.chat_view.setFocus()

        def press():
            qtbot.keyPress(window, Qt.Key.Key_Space)

        def release():
            qtbot.keyRelease(window, Qt.Key.Key_Space)
    press()
    qtbot.waitUntil(lambda: tab.state_label.text() == "Listening…", timeout=2000)
    starts = virtual_audio.inject(question_audio, 16000)
    end = starts + len(question_audio) / 16000 + 0.25
    while time.monotonic() < end:
        qtbot.wait(50)
    assert tab.partial_label.text(), "no partial transcript shown while talking"
    release()
    _wait_idle(qtbot, tab)
    user_bubble = next(b for b in reversed(tab.chat_view.bubbles) if b.from_user)
    assert "capital" in user_bubble.text().lower(), user_bubble.text()
    assert tab.chat_view.bubbles[-1].text().strip()


def test_space_types_into_the_text_box_instead(qtbot, window):
    tab = window.conversation_tab
    tab.text_box.setFocus()
    qtbot.keyClicks(tab.text_box, "a b")
    assert tab.text_box.text() == "a b"
    assert tab.conversation.state is TurnState.IDLE


def test_close_mid_turn_is_quick(qtbot, window):
    tab = window.conversation_tab
    tab.text_box.setText("Tell me a long story about the sea.")
    tab.send_text()
    qtbot.waitUntil(lambda: tab.conversation.state is TurnState.SPEAKING, timeout=30_000)
    conversation = tab.conversation
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 2.0
    assert all(not t.is_alive() for t in conversation._threads)
