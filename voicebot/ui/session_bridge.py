"""Hands the session's worker-thread callbacks to the GUI thread as Qt signals."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal

from voicebot.pipeline.display_state import Shown
from voicebot.pipeline.session import Engines
from voicebot.pipeline.session_events import SessionListener
from voicebot.ui.conversation_bridge import ConversationBridge


class SessionBridge(ConversationBridge, SessionListener):
    """The conversation's signals (``ConversationBridge``) plus the session's own, and
    ``post``: the session's way to run a call on the GUI thread."""

    turn_started_signal = Signal(object)  # Turn
    display_signal = Signal(object)  # Shown
    notice_signal = Signal(str)
    engines_ready_signal = Signal(object)  # Engines
    voice_changed_signal = Signal(str, bool, str)
    _call_signal = Signal(object)  # a callable to run on the GUI thread

    def __init__(self) -> None:
        super().__init__()
        self._call_signal.connect(self._run)

    def post(self, call: Callable[[], None]) -> None:
        self._call_signal.emit(call)

    def _run(self, call: Callable[[], None]) -> None:
        # A bound method of this GUI-thread object: Qt queues the call to that thread.
        call()

    def turn_started(self, turn) -> None:
        self.turn_started_signal.emit(turn)

    def display_changed(self, shown: Shown) -> None:
        self.display_signal.emit(shown)

    def notice(self, text: str) -> None:
        self.notice_signal.emit(text)

    def engines_ready(self, engines: Engines) -> None:
        self.engines_ready_signal.emit(engines)

    def voice_changed(self, voice: str, ok: bool, message: str) -> None:
        self.voice_changed_signal.emit(voice, ok, message)
