"""Shape the chat model's streamed text into pieces a voice can read (GUI-free).

The chat model writes text for eyes: it may use markdown, emoji, code and links even when
told not to. A voice must not read "asterisk asterisk" or a URL letter by letter, and it
must start speaking long before the reply is finished. ``ClauseSplitter`` takes the text
as it streams, cuts it where ``voicebot.text.split`` says (the one rule: sentences, a
short first piece, long sentences at a clause), cleans each piece with
``voicebot.text.cleanup.clean_for_speech`` and hands it out as soon as it is complete:

- fenced code blocks are dropped whole (also when a fence arrives split over pushes);
- a piece that repeats one already spoken in this reply is dropped, and after a few such
  repeats the rest of the reply is dropped: a small model in a loop must not talk forever.

The voice takes the pieces as they are: numbers, dates and abbreviations are left for
its normaliser (``voicebot.text.spoken``) to turn into words.
"""

from __future__ import annotations

import re

from voicebot.text.cleanup import clean_for_speech
from voicebot.text.split import next_cut

# After this many dropped repeats, everything else in the reply is dropped.
MAX_REPEATS = 2

_FENCE = "```"


class ClauseSplitter:
    """Incremental splitter: ``push`` streamed text, get speakable pieces; ``flush`` at the end.

    Pieces are cleaned with ``clean_for_speech``; empty ones are never returned. One
    splitter serves one reply (it remembers what was said to catch repeats).
    """

    def __init__(self) -> None:
        self._buffer = ""  # text not yet handed out, code blocks already removed
        self._pending = ""  # raw text that may still be (part of) a code fence
        self._in_code = False
        self._emitted = 0
        self._seen: set[str] = set()
        self._repeats = 0

    @property
    def looping(self) -> bool:
        """True once the reply repeated itself too often; later text is dropped."""
        return self._repeats >= MAX_REPEATS

    def push(self, text: str) -> list[str]:
        self._take(text)
        return self._cut()

    def flush(self) -> list[str]:
        """The rest of the reply (an unclosed code block is dropped)."""
        if not self._in_code:
            self._buffer += self._pending
        self._pending = ""
        pieces = self._cut(final=True)
        self._buffer = ""
        return pieces

    def _cut(self, final: bool = False) -> list[str]:
        pieces = []
        while (cut := next_cut(self._buffer, first=self._emitted == 0, final=final)):
            raw, self._buffer = self._buffer[:cut], self._buffer[cut:]
            pieces.extend(self._accept(raw))
        return pieces

    # ---- code fences: removed before any splitting ------------------------------------

    def _take(self, text: str) -> None:
        data = self._pending + text
        self._pending = ""
        while data:
            index = data.find(_FENCE)
            if index < 0:
                # Keep a trailing "`" or "``": it may be the start of a fence.
                keep = len(data) - len(data.rstrip("`"))
                keep = min(keep, len(_FENCE) - 1)
                head, self._pending = data[:len(data) - keep], data[len(data) - keep:]
                if not self._in_code:
                    self._buffer += head
                return
            if not self._in_code:
                # A code block ends the text before it: treat the fence as a line break.
                self._buffer += data[:index] + "\n"
            self._in_code = not self._in_code
            data = data[index + len(_FENCE):]

    # ---- what is handed out -----------------------------------------------------------

    def _accept(self, raw: str) -> list[str]:
        if self.looping:
            return []
        piece = clean_for_speech(raw)
        if not piece:
            return []
        key = " ".join(re.findall(r"[^\W_]+", piece.lower()))
        if key in self._seen and len(piece.split()) >= 2:
            self._repeats += 1
            return []
        self._seen.add(key)
        self._emitted += 1
        return [piece]


def speakable(text: str) -> list[str]:
    """A whole reply as speakable pieces (what the splitter would hand out)."""
    splitter = ClauseSplitter()
    return [*splitter.push(text), *splitter.flush()]
