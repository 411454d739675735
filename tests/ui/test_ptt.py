"""Push-to-talk from the keyboard whatever has the focus (fake engines, offscreen Qt)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.pipeline.fakes import RATE, open_fake_tab
from voicebot.pipeline.state import TurnState


@pytest.fixture
def window(qtbot):
    tab, mic = open_fake_tab(qtbot)
    yield tab, mic
    tab.shutdown()


def _finished_turns(tab):
    return [t for t in tab.conversation.turns if t.finished.is_set()]


def _hold_space(qtbot, tab, mic, modifier=Qt.KeyboardModifier.NoModifier):
    """Hold Space on whatever has the focus while half a second is said, then let go."""
    target = QApplication.focusWidget()
    qtbot.keyPress(target, Qt.Key.Key_Space, modifier)
    qtbot.waitUntil(lambda: tab.conversation.state is TurnState.LISTENING, timeout=2000)
    mic.say(np.full(RATE // 2, 0.1, np.float32))
    qtbot.wait(600)
    qtbot.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)  # Ctrl already up


def test_type_send_then_hold_space_records_a_turn(qtbot, window):
    tab, mic = window
    tab.text_box.setFocus()
    qtbot.keyClicks(tab.text_box, "Hello there")
    qtbot.keyClick(tab.text_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(_finished_turns(tab)) == 1, timeout=5000)
    assert QApplication.focusWidget() is tab.talk_button  # back on the talk button
    assert tab.text_box.text() == ""
    _hold_space(qtbot, tab, mic)
    qtbot.waitUntil(lambda: len(_finished_turns(tab)) == 2, timeout=5000)
    spoken = tab.conversation.turns[-1]
    assert spoken.source == "voice" and spoken.user_text == "what is the capital of france"
    qtbot.waitUntil(lambda: tab.chat_view.bubbles[-1].text().strip() != "")
    users = [b.text() for b in tab.chat_view.bubbles if b.from_user]
    assert users == ["Hello there", "what is the capital of france"]


def test_ctrl_space_talks_while_typing(qtbot, window):
    tab, mic = window
    tab.text_box.setFocus()
    qtbot.keyClicks(tab.text_box, "half typed")
    _hold_space(qtbot, tab, mic, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(_finished_turns(tab)) == 1, timeout=5000)
    assert tab.conversation.turns[-1].source == "voice"
    assert tab.text_box.text() == "half typed"  # the text box kept its words


def test_plain_space_while_typing_is_a_space(qtbot, window):
    tab, _mic = window
    tab.text_box.setFocus()
    qtbot.keyClicks(tab.text_box, "a b")
    assert tab.text_box.text() == "a b"
    assert tab.conversation.turns == [] and tab.conversation.state is TurnState.IDLE
