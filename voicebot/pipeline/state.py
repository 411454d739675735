"""The states of a conversation and the moves allowed between them."""

from __future__ import annotations

import enum


class TurnState(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    RECOGNIZING = "recognising"
    THINKING = "thinking"
    SPEAKING = "speaking"


# Talking (LISTENING) is reachable from every state: that is barge-in. Any state can fall
# back to IDLE (cancel, an empty transcript, an error, the end of the reply).
ALLOWED: dict[TurnState, set[TurnState]] = {
    TurnState.IDLE: {TurnState.LISTENING, TurnState.THINKING},  # THINKING: typed text
    TurnState.LISTENING: {TurnState.RECOGNIZING, TurnState.IDLE, TurnState.LISTENING},
    TurnState.RECOGNIZING: {TurnState.THINKING, TurnState.IDLE, TurnState.LISTENING},
    TurnState.THINKING: {TurnState.SPEAKING, TurnState.IDLE, TurnState.LISTENING,
                         TurnState.THINKING},
    TurnState.SPEAKING: {TurnState.IDLE, TurnState.LISTENING, TurnState.THINKING},
}
