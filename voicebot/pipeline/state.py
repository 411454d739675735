"""The states of a conversation and the moves allowed between them.

PAUSED is hands-free's barge-in before it is known what the user meant: their voice
over the reply pauses it (the reply's generation and synthesis go on queueing) while a
tentative turn records and recognises what they said. From there the reply resumes
(SPEAKING, or THINKING if it had not started sounding; IDLE if it had already ended), or
the user's turn goes on as a real interruption (THINKING), or a talk-button press, typed
text or stop interrupt both (LISTENING, THINKING, IDLE).
"""

from __future__ import annotations

import enum


class TurnState(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    RECOGNIZING = "recognising"
    THINKING = "thinking"
    SPEAKING = "speaking"
    PAUSED = "paused"  # the reply waits while the user talks over it (hands-free)


# Talking (LISTENING) is reachable from every state: that is barge-in. Any state can fall
# back to IDLE (cancel, an empty transcript, an error, the end of the reply).
ALLOWED: dict[TurnState, set[TurnState]] = {
    TurnState.IDLE: {TurnState.LISTENING, TurnState.THINKING},  # THINKING: typed text
    TurnState.LISTENING: {TurnState.RECOGNIZING, TurnState.IDLE, TurnState.LISTENING},
    TurnState.RECOGNIZING: {TurnState.THINKING, TurnState.IDLE, TurnState.LISTENING},
    TurnState.THINKING: {TurnState.SPEAKING, TurnState.IDLE, TurnState.LISTENING,
                         TurnState.THINKING, TurnState.PAUSED},
    TurnState.SPEAKING: {TurnState.IDLE, TurnState.LISTENING, TurnState.THINKING,
                         TurnState.PAUSED},
    TurnState.PAUSED: {TurnState.SPEAKING, TurnState.THINKING, TurnState.IDLE,
                       TurnState.LISTENING},
}
