"""The state pill, status line, timing label and status bar agree at every moment.

Fake engines and in-memory audio, offscreen Qt: the view's logic in seconds. The texts
themselves are tested without Qt in tests/pipeline/test_display_state.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.fakes import RATE, FakeVad, fake_engines, memory_audio, open_fake_tab
from voicebot.pipeline.audio_ends import AudioEnds
from voicebot.pipeline.display_state import Phase
from voicebot.settings import Settings
from voicebot.ui.conversation_tab import ConversationTab


@pytest.fixture
def tab_and_mic(qtbot):
    tab, mic = open_fake_tab(qtbot)
    yield tab, mic
    tab.shutdown()


class Painted:
    """After every state change the tab paints, what each indicator shows."""

    def __init__(self, tab) -> None:
        self.tab = tab
        self.snapshots = []
        self.status_bar = ""
        # Connected after the tab's own slots: they run once the tab has painted.
        tab.state_text_changed.connect(self._bar)
        tab.bridge.display_signal.connect(self._check)

    def _bar(self, text: str) -> None:
        self.status_bar = text

    def _check(self, shown) -> None:
        tab = self.tab
        seen = (tab.state_label.text(), tab.status_label.text(), tab.timing_label.text(),
                self.status_bar)
        assert seen == (shown.pill, shown.status, shown.timing, shown.status_bar), shown
        self.snapshots.append((shown.phase, *seen))

    @property
    def phases(self) -> list[Phase]:
        return [phase for phase, *_ in self.snapshots]


def test_every_state_change_leaves_the_indicators_consistent(qtbot, tab_and_mic, monkeypatch):
    from voicebot.pipeline import live_session

    tab, mic = tab_and_mic
    painted = Painted(tab)
    session = tab.session
    assert tab.state_label.text() == "Ready" and tab.timing_label.text() == ""

    # A spoken turn: its timing replaces nothing at first, then names what it measures.
    tab.press_talk()
    qtbot.waitUntil(lambda: painted.phases[-1:] == [Phase.LISTENING], timeout=2000)
    assert tab.timing_label.text() == ""
    mic.say(np.full(RATE // 2, 0.1, np.float32)).join()
    tab.release_talk()
    qtbot.waitUntil(lambda: session.conversation.turns[-1].finished.is_set()
                    and painted.phases[-1] is Phase.READY, timeout=5000)
    first_timing = tab.timing_label.text()
    assert "recognised in" in first_timing and "first sound after" in first_timing
    # The next turn's timing replaces this one's as soon as it starts.
    tab.text_box.setText("Talk to me.")
    tab.send_text()
    qtbot.waitUntil(lambda: painted.phases[-1] is Phase.SPEAKING, timeout=5000)
    thinking = next(s for s in reversed(painted.snapshots) if s[0] is Phase.THINKING)
    assert thinking[3] == ""
    tab.stop_bot()
    qtbot.waitUntil(lambda: painted.phases[-1] is Phase.INTERRUPTED, timeout=5000)

    # A failing voice: the problem is shown, and cleared by the next turn that works.
    session.engines.synthesizer.fail = RuntimeError("the voice broke")
    tab.text_box.setText("Hello")
    tab.send_text()
    qtbot.waitUntil(lambda: painted.phases[-1] is Phase.ERROR, timeout=5000)
    assert tab.status_label.text() == "Problem: RuntimeError: the voice broke"
    session.engines.synthesizer.fail = None
    tab.text_box.setText("Hello again")
    tab.send_text()
    qtbot.waitUntil(lambda: session.conversation.turns[-1].finished.is_set()
                    and painted.phases[-1] is Phase.READY, timeout=5000)
    assert "Problem" not in tab.status_label.text()

    # A lost device: shown, then reopened (here: only the speaker comes back).
    monkeypatch.setattr(live_session, "RECOVER_AFTER_S", 0.05)
    monkeypatch.setattr(live_session, "open_devices", lambda settings, on_lost=None:
                        AudioEnds(problems=["No microphone (unplugged); typing works"]))
    session._device_lost(OSError("the microphone stopped working"))
    qtbot.waitUntil(lambda: painted.phases[-1] is Phase.READY
                    and Phase.RECOVERING in painted.phases, timeout=5000)
    assert Phase.DEVICE_LOST in painted.phases
    assert tab.status_label.text() == "No microphone (unplugged); typing works"
    assert not tab.talk_button.isEnabled() and tab.text_box.isEnabled()

    assert {Phase.LISTENING, Phase.RECOGNIZING, Phase.THINKING, Phase.SPEAKING,
            Phase.READY, Phase.INTERRUPTED, Phase.ERROR, Phase.DEVICE_LOST,
            Phase.RECOVERING} <= set(painted.phases)


def test_loading_is_shown_until_the_engines_are_in(qtbot):
    tab = ConversationTab(Settings(), load_models=False)
    qtbot.addWidget(tab)
    assert tab.state_label.text() == "Loading…"
    assert tab.status_label.text() == "Loading models…"
    assert tab.state_text() == "Loading models…"  # the state's name is not said twice
    assert not tab.talk_button.isEnabled() and not tab.text_box.isEnabled()
    tab.use_engines(fake_engines(), memory_audio()[0])
    assert tab.state_label.text() == "Ready" and tab.talk_button.isEnabled()
    tab.shutdown()


def test_hands_free_turns_show_the_users_words(qtbot):
    settings = Settings()
    settings.audio.hands_free = True
    tab = ConversationTab(settings, load_models=False)
    qtbot.addWidget(tab)
    tab.session.vad = FakeVad()
    tab.use_engines(fake_engines(), memory_audio()[0])
    assert tab.state_label.text() == "Waiting"
    # The monitor starts turns through the conversation, not the talk button.
    conversation = tab.session.conversation
    turn = conversation.start_listening()
    conversation.stop_listening()
    qtbot.waitUntil(turn.finished.is_set, timeout=5000)
    qtbot.waitUntil(lambda: [b.text() for b in tab.chat_view.bubbles if b.from_user]
                    == ["what is the capital of france"], timeout=2000)
    tab.shutdown()


def test_signals_can_be_emitted_for_ever():
    """PySide6 6.12.0's emit took a reference from True each time: a long conversation
    (one emit per token) ended in "Fatal Python error: bool_dealloc". See qt_fixes."""
    import sys

    from voicebot.ui import qt_fixes

    qt_fixes.install()
    probe = qt_fixes._Probe()
    before = sys.getrefcount(True)
    for _ in range(10_000):
        probe.signal.emit()
    assert abs(sys.getrefcount(True) - before) < 50


def test_the_status_bar_says_what_the_tab_says(qtbot):
    from voicebot.ui.main_window import MainWindow

    win = MainWindow(Settings(), load_models=False)
    qtbot.addWidget(win)
    bar = win.statusBar()
    tab = win.conversation_tab
    assert bar.currentMessage() == tab.state_text() == "Loading models…"
    tab.use_engines(fake_engines(), memory_audio()[0])
    assert bar.currentMessage() == tab.state_text()
    assert bar.currentMessage().startswith("Ready: ")
    # A passing message gives way to the state again.
    bar.showMessage("Exported 3 turns", 50)
    qtbot.waitUntil(lambda: bar.currentMessage() == tab.state_text(), timeout=2000)
    win.close()


def test_the_first_screen_names_the_models_and_gives_way_to_the_conversation(qtbot):
    tab = ConversationTab(Settings(), load_models=False)
    qtbot.addWidget(tab)
    tab.show()
    welcome = tab.chat_view.welcome
    assert welcome.isVisible() and "Loading the models" in welcome.text()
    tab.use_engines(fake_engines(), memory_audio()[0])
    text = welcome.text()
    assert welcome.isVisible() and "Hold the button or Space" in text
    assert "listening with whisper-tiny-en" in text and "Training tab" in text
    tab.text_box.setText("Hello there")
    tab.send_text()
    qtbot.waitUntil(lambda: len(tab.chat_view.bubbles) >= 2, timeout=5000)
    assert not welcome.isVisible()
    tab.clear_history()
    assert welcome.isVisible()
    tab.shutdown()


def test_audio_rests_while_the_conversation_is_out_of_sight(qtbot):
    """Push-to-talk, idle, on another tab or minimised: the streams are suspended (they
    cost CPU doing nothing); back on screen, or when a turn starts, they run again."""
    from voicebot.ui.main_window import MainWindow

    win = MainWindow(Settings(), load_models=False)
    qtbot.addWidget(win)
    win.show()
    tab = win.conversation_tab
    tab.use_engines(fake_engines(), memory_audio()[0])
    audio = tab.session.audio
    assert not audio.suspended
    win.tabs.setCurrentWidget(win.training_tab)
    qtbot.waitUntil(lambda: audio.suspended, timeout=2000)
    win.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: not audio.suspended, timeout=2000)
    win.showMinimized()
    qtbot.waitUntil(lambda: audio.suspended, timeout=2000)
    turn = tab.session.submit_text("Hello")  # a turn (say, from a test) wakes it
    assert not audio.suspended
    qtbot.waitUntil(turn.finished.is_set, timeout=5000)
    qtbot.waitUntil(lambda: audio.suspended, timeout=2000)  # idle and unseen again
    win.showNormal()
    qtbot.waitUntil(lambda: not audio.suspended, timeout=2000)
    win.close()


def test_hands_free_keeps_listening_out_of_sight(qtbot):
    from voicebot.ui.main_window import MainWindow

    settings = Settings()
    settings.audio.hands_free = True
    win = MainWindow(settings, load_models=False)
    qtbot.addWidget(win)
    win.show()
    tab = win.conversation_tab
    tab.session.vad = FakeVad()
    tab.use_engines(fake_engines(), memory_audio()[0])
    win.tabs.setCurrentWidget(win.training_tab)
    qtbot.wait(200)
    assert not tab.session.audio.suspended
    win.close()


def test_a_backchannel_over_the_reply_is_noted_on_its_bubble(qtbot):
    """Hands-free: "Mm-hmm" over the reply pauses it and lets it go on; the chat view says
    so on the reply's bubble (it is not a turn of its own, nor answered)."""
    from tests.pipeline.fakes import FakeChat, FakeRecognizer, FakeVoice

    tab = ConversationTab(Settings(), load_models=False)
    qtbot.addWidget(tab)
    tab.show()
    audio, mic, _ = memory_audio()
    tab.use_engines(fake_engines(recognizer=FakeRecognizer("Mm-hmm."),
                                 chat=FakeChat(reply="One two three. Four five six.", delay=0),
                                 voice=FakeVoice(chunks=5, seconds=0.2, delay=0.05)), audio)
    conversation = tab.session.conversation
    reply = tab.session.submit_text("Count for me.")
    qtbot.waitUntil(lambda: reply.id in tab._bot_bubbles, timeout=5000)
    over = conversation.start_listening(0.0, tentative=True)
    mic.say(np.full(int(0.3 * RATE), 0.1, np.float32)).join()
    conversation.stop_listening()
    qtbot.waitUntil(lambda: over.dropped, timeout=5000)
    qtbot.waitUntil(reply.finished.is_set, timeout=10000)
    bubble = tab._bot_bubbles[reply.id]
    # Both, whichever of the two events the window handled first (the turn's finished
    # flag is set before the window hears of it): the note, and the timing kept.
    qtbot.waitUntil(lambda: "went on after your “Mm-hmm.”" in bubble.meta_label.text()
                    and "first sound after" in bubble.meta_label.text(), timeout=5000)
    assert not reply.cancelled and len(tab._user_bubbles) == 1  # no bubble for the murmur
    tab.shutdown()
