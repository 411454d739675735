"""What a ``Session`` reports (``SessionListener``), and how it hears its conversation.

The listener's calls come from worker threads: a GUI adapter (voicebot/ui/session_bridge)
hands them to its own thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from voicebot.asr.vosk_language import language_notice
from voicebot.pipeline.conversation import ConversationListener, Turn
from voicebot.pipeline.display_state import Shown
from voicebot.pipeline.session import Engines
from voicebot.pipeline.state import TurnState

if TYPE_CHECKING:
    from voicebot.pipeline.live_session import Session

log = logging.getLogger("voicebot.pipeline.live_session")  # the session's records, one log


class SessionListener(ConversationListener):
    """The conversation's events plus the session's own. Default: ignore everything."""

    def display_changed(self, shown: Shown) -> None:
        """What the window shows changed (pill, status line, status bar, timing)."""

    def notice(self, text: str) -> None:
        """Something the user should know, one sentence each ("": none): engines or a
        voice that could not be used, speech in a language the recogniser does not know."""

    def engines_ready(self, engines: Engines) -> None:
        """The engines are in use and the audio devices open."""

    def voice_changed(self, voice: str, ok: bool, message: str) -> None:
        """A voice asked for with ``request_voice`` speaks now (or could not load)."""


class ConversationEvents(ConversationListener):
    """The conversation's listener: keeps the session's phase and history up to date,
    then passes each event on."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.out = session.listener

    def turn_started(self, turn: Turn) -> None:
        self.session._turn = turn
        self.out.turn_started(turn)

    def state_changed(self, state: TurnState) -> None:
        self.out.state_changed(state)
        self.session._show_turn_state(state)

    def partial_transcript(self, turn: Turn, text: str) -> None:
        self.out.partial_transcript(turn, text)

    def final_transcript(self, turn: Turn) -> None:
        self.out.final_transcript(turn)
        # A recogniser that heard speech in a language it does not know says so on the
        # result (Vosk: voicebot.asr.vosk_language); the user must hear it, not only the log.
        mismatch = language_notice(turn.hypotheses)
        if mismatch:
            log.info("session: turn %s: %s", turn.id, mismatch)
            self.out.notice(mismatch)

    def reply_text(self, turn: Turn, piece: str) -> None:
        self.out.reply_text(turn, piece)

    def error(self, turn: Turn | None, message: str) -> None:
        log.info("session: turn %s error: %s", turn.id if turn else "-", message)
        self.out.error(turn, message)

    def turn_finished(self, turn: Turn) -> None:
        self.session._turn_finished(turn)
        self.out.turn_finished(turn)

    def turn_dropped(self, turn: Turn) -> None:
        # Counts, not the words, as for every turn in the log.
        log.info("session: turn %d dropped: %d words over the reply, no interruption; "
                 "the reply goes on", turn.id, len(turn.user_text.split()))
        self.out.turn_dropped(turn)
