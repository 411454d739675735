"""The voice's text front end: a text -> normalized pieces, ready for phonemes.

A voice synthesises what it is given. The chat side hands it pieces already cut
(``voicebot.lm.speech_shaping``; the conversation passes ``split_first=False``: nothing
is cut again). A whole text given directly (``voicebot say``, previews, scoring runs) is
cut here by the same rule, ``voicebot.text.split``, so it comes out in the pieces the
chat side would have made of it. Each piece is then normalized
(``voicebot.text.spoken``) when reached: ``pieces`` is lazy, and a 5,000-character text
never turns into one huge phoneme sequence or one huge audio array.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from voicebot.text.cleanup import drop_other_scripts
from voicebot.text.split import LONG_PIECE_CHARS, long_cut, sentences, split_sentence
from voicebot.text.spoken import normalize

log = logging.getLogger(__name__)

# Normalising lengthens a piece ("$3.50" is five words): only a piece past this many
# characters (a clause cut at LONG_PIECE_CHARS rarely grows so much) is cut again, so one
# synthesis stays bounded.
MAX_PIECE_CHARS = 2 * LONG_PIECE_CHARS


@dataclass(frozen=True)
class Piece:
    text: str
    end_of_sentence: bool


def _bounded(text: str) -> list[str]:
    """``text`` in parts of at most MAX_PIECE_CHARS (cut at clauses, spaces, or anywhere)."""
    parts = []
    while len(text) > MAX_PIECE_CHARS:
        cut = long_cut(text, MAX_PIECE_CHARS) or MAX_PIECE_CHARS
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    return [part for part in (*parts, text) if part]


def _spoken(part: str) -> str:
    """``part`` normalized, with the clause mark it was cut after (a pause the voice
    makes) kept: ``normalize`` trims leading and trailing punctuation."""
    spoken = normalize(part)
    mark = part[-1:]
    if spoken and mark in ",;:—–" and spoken[-1] not in ",;:":
        spoken += mark if mark in ",;:" else ","
    return spoken


def pieces(text: str, split_first: bool = True, *, latin_only: bool = False
           ) -> Iterator[Piece]:
    """Normalised, speakable pieces of ``text``, produced lazily, in order.

    With ``split_first`` the first sentence that has words is cut as the first piece of a
    reply is (``voicebot.text.split.first_piece_end``). With ``latin_only`` (English
    voices) letters of other scripts are skipped, with a log notice.
    """
    first = split_first
    for sentence in sentences(text):
        if latin_only:
            sentence, dropped = drop_other_scripts(sentence)
            if dropped:
                log.warning("skipped %d characters of a script this voice cannot read",
                            dropped)
        last = None  # one piece held back: whether it ends the sentence is known later
        for part in split_sentence(sentence, first):
            spoken = _spoken(part)
            if not any(ch.isalnum() for ch in spoken):
                continue  # punctuation or emoji only
            for bounded in _bounded(spoken):
                if last is not None:
                    yield Piece(last, end_of_sentence=False)
                last = bounded
        if last is not None:
            first = False
            yield Piece(last, end_of_sentence=True)
