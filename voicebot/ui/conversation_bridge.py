"""Hands the conversation's worker-thread callbacks to the GUI thread as Qt signals."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from voicebot.pipeline.conversation import ConversationListener, Turn
from voicebot.pipeline.state import TurnState


class ConversationBridge(QObject, ConversationListener):
    # Signals cross threads as queued connections: slots run in the GUI thread.
    state_changed_signal = Signal(object)  # TurnState
    partial_signal = Signal(object, str)  # Turn, text
    final_signal = Signal(object)  # Turn
    reply_signal = Signal(object, str)  # Turn, piece
    finished_signal = Signal(object)  # Turn
    error_signal = Signal(object, str)  # Turn | None, message
    dropped_signal = Signal(object)  # Turn (a backchannel over the reply: it went on)

    def state_changed(self, state: TurnState) -> None:
        self.state_changed_signal.emit(state)

    def partial_transcript(self, turn: Turn, text: str) -> None:
        self.partial_signal.emit(turn, text)

    def final_transcript(self, turn: Turn) -> None:
        self.final_signal.emit(turn)

    def reply_text(self, turn: Turn, piece: str) -> None:
        self.reply_signal.emit(turn, piece)

    def turn_finished(self, turn: Turn) -> None:
        self.finished_signal.emit(turn)

    def error(self, turn: Turn | None, message: str) -> None:
        self.error_signal.emit(turn, message)

    def turn_dropped(self, turn: Turn) -> None:
        self.dropped_signal.emit(turn)
