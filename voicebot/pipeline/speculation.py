"""Start the reply before the final transcript is known (GUI-free).

When the user lets go of the talk button (or the end-of-turn rule ends a hands-free turn)
the recognizer still has its final decode and the n-best rescoring to do (about 110 ms
on 2 cores), and only then would the chat model start (about 100 ms to its first token).
The recognizer's last partial transcript is usually already the final one when nothing
but a quiet pause came after it; a ``Speculation`` starts the chat model on that guess at
once, beside the final decode. If the final transcript has the same words, the reply
already under way is kept (its first pieces are waiting); if not, it is abandoned and the
reply starts again from the final transcript, so a wrong guess costs nothing but the
CPU it used.

Given a voice, the speculation also speaks the first chunk of the reply's first clause
(``FirstClause``) and then waits to be taken, so neither the chat model nor the voice
competes with the final decode for the two cores longer than needed. A kept reply plays
that chunk at once instead of synthesising it after the final transcript, and the same
synthesis goes on for the rest of the clause. Once taken, the speculation starts no new
voicing: the conversation speaks whatever has no audio yet itself.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from voicebot.text.scoring import for_scoring

if TYPE_CHECKING:
    from voicebot.cancel import CancelToken
    from voicebot.lm.chat import ChatModel
    from voicebot.lm.speech_shaping import ClauseSplitter
    from voicebot.tts.base import AudioChunk, Synthesizer

log = logging.getLogger(__name__)

_DONE = object()


def same_words(final: str, guess: str) -> bool:
    """The final transcript says what the guess said: the same words, whatever the case
    and punctuation (a reply to "What is the capital of France" answers "what is the
    capital of france?" too). Nothing at all never agrees."""
    words = for_scoring(final)
    return bool(words) and words == for_scoring(guess)


class _Either:
    """Set when the turn is cancelled or the speculation abandoned."""

    def __init__(self, turn_cancel: CancelToken, own: threading.Event) -> None:
        self.turn_cancel = turn_cancel
        self.own = own

    def is_set(self) -> bool:
        return self.own.is_set() or self.turn_cancel.is_set()


class _VoiceCancel:
    """The speculative voice's cancel token: the turn cancelled, or the guess abandoned
    before it was kept (once kept, the clause's audio belongs to the reply, which ends the
    speculation when its text is done, long before the clause has been spoken)."""

    def __init__(self, turn_cancel: CancelToken, abandoned: threading.Event,
                 taken: threading.Event) -> None:
        self.turn_cancel, self.abandoned, self.taken = turn_cancel, abandoned, taken

    def is_set(self) -> bool:
        return self.turn_cancel.is_set() or (self.abandoned.is_set()
                                             and not self.taken.is_set())


class FirstClause:
    """The first clause of a speculative reply with its first chunk of audio, made ahead
    of the final transcript; the rest of its audio is made by whoever plays it."""

    def __init__(self, text: str, audio: Iterator[AudioChunk]) -> None:
        self.text = text
        self._audio = audio
        self._head: list[AudioChunk] = []
        self._error: BaseException | None = None
        self.done = threading.Event()  # the speculation has finished with the voice

    def _speak_first_chunk(self) -> None:
        try:
            self._head.extend(itertools.islice(self._audio, 1))
        except Exception as exc:  # the conversation's voice would fail the same way
            self._error = exc
        finally:
            self.done.set()

    def discard(self, timeout: float) -> bool:
        """Not to be played: wait (up to ``timeout``) until the voice is free, then end
        the synthesis; False if the voice was still busy."""
        if not self.done.wait(timeout):
            return False
        close = getattr(self._audio, "close", None)
        if close is not None:
            close()
        return True

    def chunks(self) -> Iterator[AudioChunk]:
        """The audio: the chunk made ahead, then the rest as the voice makes it."""
        self.done.wait()
        if self._error is not None:
            raise self._error
        yield from self._head
        yield from self._audio


class Speculation:
    """A reply generated on a thread of its own from ``history`` (whose last message is
    the guessed transcript) until it is taken (``pieces()``) or ``abandon()``-ed.

    With ``voice`` and ``splitter`` (the conversation's kind, so the clauses match), the
    first chunk of its first clause is spoken ahead too (see the module docstring)."""

    def __init__(self, chat: ChatModel, history: Sequence[dict[str, str]], guess: str,
                 turn_cancel: CancelToken, voice: Synthesizer | None = None,
                 splitter: ClauseSplitter | None = None) -> None:
        self.guess = guess
        self.history = list(history)  # what the guess's reply reads
        self.started = time.monotonic()
        self._abandoned = threading.Event()
        self._stop = _Either(turn_cancel, self._abandoned)
        self._pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._voice = voice if splitter is not None else None
        self._splitter = splitter
        self._taken = threading.Event()
        self._voice_cancel = _VoiceCancel(turn_cancel, self._abandoned, self._taken)
        self._lock = threading.Lock()  # the hand-over: voicing begins, or never will
        self._voicing_closed = False
        self.first_clause: FirstClause | None = None
        self._thread = threading.Thread(target=self._generate, args=(chat, self.history),
                                        name="speculative-reply", daemon=True)
        self._thread.start()

    def _generate(self, chat: ChatModel, history: list[dict[str, str]]) -> None:
        stream = chat.stream(history, self._stop)
        voicing = self._voice is not None
        try:
            for piece in stream:
                self._pieces.put(piece)
                if self._stop.is_set():
                    break
                if voicing:
                    clause = _first_said(self._splitter.push(piece))
                    if clause is not None:
                        voicing = False
                        log.debug("speculation: first clause of %r %.0f ms after it started",
                                  self.guess, (time.monotonic() - self.started) * 1000)
                        self._speak_ahead(clause)
                        self._wait_until_taken()
            else:
                if voicing and not self._stop.is_set():  # the whole reply is one clause
                    clause = _first_said(self._splitter.flush())
                    if clause is not None:
                        self._speak_ahead(clause)
        except Exception as exc:  # handed to whoever takes the reply, like the chat's own
            self._pieces.put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # the chat model's worker ends now, not at GC
                close()
            self._pieces.put(_DONE)

    def _speak_ahead(self, clause: str) -> None:
        """Make the first chunk of ``clause``'s audio, unless the reply was taken first
        (the conversation then speaks it itself: one voice, one synthesis at a time).
        Only one chunk: the rest would compete with the final decode for the CPU, and
        is not needed before that chunk has played."""
        with self._lock:
            if self._voicing_closed:
                log.debug("speculation: %r was taken before its first clause", self.guess)
                return
            first = self.first_clause = FirstClause(
                clause, iter(self._voice.stream(clause, self._voice_cancel, split_first=False)))
        started = time.monotonic()
        first._speak_first_chunk()
        log.debug("speculation: the first chunk of %r spoken ahead in %.0f ms", clause,
                  (time.monotonic() - started) * 1000)

    def _wait_until_taken(self) -> None:
        """Hold the rest of the reply until it is wanted: the CPU goes to the final
        decode meanwhile, and the next clause is needed only once the first one plays."""
        while not self._taken.wait(0.02):
            if self._stop.is_set():
                return

    def take(self) -> FirstClause | None:
        """The reply is kept: no voicing starts after this; the first clause spoken (or
        being spoken) ahead, if any."""
        self._taken.set()
        with self._lock:
            self._voicing_closed = True
            first = self.first_clause
        log.debug("speculation: %r taken %.0f ms after it started, first clause %s",
                  self.guess, (time.monotonic() - self.started) * 1000,
                  "none" if first is None else "ready" if first.done.is_set() else "under way")
        return first

    def agrees(self, final: str) -> bool:
        return same_words(final, self.guess)

    def pieces(self) -> Iterator[str]:
        """The reply's pieces, those made so far at once, then as they come. Closing the
        iterator early (the turn ended) abandons the rest."""
        try:
            while True:
                item = self._pieces.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                if self._stop.is_set():
                    return
                yield item
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Stop generating (within one token) and speaking (within one chunk); the thread
        ends by itself."""
        self._abandoned.set()

    def wait_voice_idle(self, timeout: float) -> bool:
        """After ``abandon()``: wait until the voice is no longer speaking ahead (before
        the conversation uses it for the restarted reply)."""
        with self._lock:
            self._voicing_closed = True  # no voicing starts after this either
            first = self.first_clause
        return first is None or first.discard(timeout)

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _first_said(clauses) -> str | None:
    """The first clause with something to say, or None."""
    return next((clause for clause in clauses if clause.strip()), None)
