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
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from voicebot.text.scoring import for_scoring

if TYPE_CHECKING:
    from voicebot.cancel import CancelToken
    from voicebot.lm.chat import ChatModel

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


class Speculation:
    """A reply generated on a thread of its own from ``history`` (whose last message is
    the guessed transcript) until it is taken (``pieces()``) or ``abandon()``-ed."""

    def __init__(self, chat: ChatModel, history: Sequence[dict[str, str]], guess: str,
                 turn_cancel: CancelToken) -> None:
        self.guess = guess
        self.history = list(history)  # what the guess's reply reads
        self._abandoned = threading.Event()
        self._stop = _Either(turn_cancel, self._abandoned)
        self._pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._generate, args=(chat, self.history),
                                        name="speculative-reply", daemon=True)
        self._thread.start()

    def _generate(self, chat: ChatModel, history: list[dict[str, str]]) -> None:
        stream = chat.stream(history, self._stop)
        try:
            for piece in stream:
                self._pieces.put(piece)
                if self._stop.is_set():
                    break
        except Exception as exc:  # handed to whoever takes the reply, like the chat's own
            self._pieces.put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # the chat model's worker ends now, not at GC
                close()
            self._pieces.put(_DONE)

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
        """Stop generating (within one token); the thread ends by itself."""
        self._abandoned.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()
