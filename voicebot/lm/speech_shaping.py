"""Shape the chat model's streamed text into pieces a voice can read (GUI-free).

The chat model writes text for eyes: it may use markdown, emoji, code and links even when
told not to. A voice must not read "asterisk asterisk" or a URL letter by letter, and it
must start speaking long before the reply is finished. ``ClauseSplitter`` takes the text
as it streams, cuts it into clauses and sentences, cleans each one with
``clean_for_speech`` and hands it out as soon as it is complete:

- the first piece may end at a clause boundary (a comma, a colon, a dash) once it has a
  few words, so the first audio starts after a handful of tokens, not a whole sentence;
- later pieces end at sentence boundaries (and at line breaks, where lists and paragraphs
  end), with long sentences cut at their last comma;
- fenced code blocks are dropped whole; inline markup is stripped, link text kept;
- a piece that repeats one already spoken in this reply is dropped, and after a few such
  repeats the rest of the reply is dropped: a small model in a loop must not talk forever.

Numbers, dates and abbreviations are left alone: the TTS front end
(``voicebot.tts.text``) turns those into words.
"""

from __future__ import annotations

import re
import unicodedata

# The first piece may end at a clause boundary once it has this many words: shorter
# fragments ("Sure,") sound choppy, longer ones delay the first audio.
FIRST_CLAUSE_MIN_WORDS = 3
# Without any punctuation, cut the first piece after this many words anyway so speech can
# start; later pieces wait for punctuation up to LONG_PIECE_CHARS.
FIRST_PIECE_MAX_WORDS = 16
# A sentence longer than this is cut at its last clause boundary (or space).
LONG_PIECE_CHARS = 220
# After this many dropped repeats, everything else in the reply is dropped.
MAX_REPEATS = 2

# Titles and Latin abbreviations whose period does not end a sentence.
_NO_BREAK_BEFORE = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e",
                    "approx", "no", "fig", "mt"}

_FENCE = "```"
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\S+@\S+\.\w+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_INLINE_CODE = re.compile(r"`+([^`]*)`+")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_LINE_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,3}[.)]\s+)", re.MULTILINE)
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_LEFTOVER_MARKS = re.compile(r"[*#|~^\\]+|(?<!\w)_+|_+(?!\w)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_SPACES = re.compile(r"\s+")
_SPEAKABLE = re.compile(r"[^\W_]")  # a letter or a digit


def _is_emoji_or_symbol(ch: str) -> bool:
    if ch in "\u200d\ufe0e\ufe0f\u20e3":  # joiners and variation selectors of emoji
        return True
    category = unicodedata.category(ch)
    # So: pictographs, dingbats, arrows; Cs/Co: broken surrogates, private use glyphs.
    return category in ("So", "Cs", "Co") or 0x1F3FB <= ord(ch) <= 0x1F3FF  # skin tones


def clean_for_speech(text: str) -> str:
    """Text as it should be read aloud: no markup, links, code marks or emoji.

    Returns "" when nothing speakable is left (only punctuation or symbols).
    """
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _EMAIL.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = _RULE.sub(" ", text)
    text = _LINE_MARKUP.sub(" ", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _LEFTOVER_MARKS.sub(" ", text)
    text = "".join(" " if _is_emoji_or_symbol(ch) else ch for ch in text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = text.lstrip(",.;:!?)]}- ")
    return text if _SPEAKABLE.search(text) else ""


def strip_code_blocks(text: str) -> str:
    """A complete text without its fenced code blocks (an unclosed one runs to the end)."""
    parts = text.split(_FENCE)
    return " ".join(parts[0::2])


def _words(text: str) -> int:
    return len(text.split())


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
        pieces = []
        while (cut := self._next_cut()) is not None:
            raw, self._buffer = self._buffer[:cut], self._buffer[cut:]
            pieces.extend(self._accept(raw))
        return pieces

    def flush(self) -> list[str]:
        """The rest of the reply (an unclosed code block is dropped)."""
        if not self._in_code:
            self._buffer += self._pending
        self._pending = ""
        rest, self._buffer = self._buffer, ""
        pieces = []
        for line in rest.split("\n"):
            pieces.extend(self._accept(line))
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

    # ---- where to cut -----------------------------------------------------------------

    def _next_cut(self) -> int | None:
        text = self._buffer
        if not text.strip():
            return None
        first = self._emitted == 0
        for match in re.finditer(r"\n|[.!?…]+[\"')\]]*(?=\s)|[,;:—–](?=\s)", text):
            end = match.end()
            mark = match.group()
            if mark == "\n":
                return end
            if mark[0] in ".!?…":
                if mark == "." and self._no_break_after(text[:match.start()]):
                    continue
                return end
            # A clause boundary: only for the first piece, and only once it has some words.
            if first and _words(text[:end]) >= FIRST_CLAUSE_MIN_WORDS:
                return end
        if first and _words(text) > FIRST_PIECE_MAX_WORDS:
            return text.rstrip().rfind(" ") + 1 or None
        if len(text) > LONG_PIECE_CHARS:
            head = text[:LONG_PIECE_CHARS]
            cut = max(head.rfind(", "), head.rfind("; "))
            return (cut + 1) if cut > 0 else (head.rfind(" ") + 1 or None)
        return None

    @staticmethod
    def _no_break_after(before: str) -> bool:
        line = before.rsplit("\n", 1)[-1].strip()
        if line.isdigit() and len(line) <= 3:
            return True  # "2. " at the start of a line numbers a list item
        word = before.rsplit(None, 1)[-1] if before.split() else ""
        word = word.lstrip("(\"'").lower()
        # A single letter ("J. Smith") is an initial, not the end of a sentence.
        return word in _NO_BREAK_BEFORE or (len(word) == 1 and word.isalpha())

    # ---- what is handed out -----------------------------------------------------------

    def _accept(self, raw: str) -> list[str]:
        if self.looping:
            return []
        piece = clean_for_speech(raw)
        if not piece:
            return []
        key = " ".join(re.findall(r"[^\W_]+", piece.lower()))
        if key in self._seen and _words(piece) >= 2:
            self._repeats += 1
            return []
        self._seen.add(key)
        self._emitted += 1
        return [piece]


def speakable(text: str) -> list[str]:
    """A whole reply as speakable pieces (what the splitter would hand out)."""
    splitter = ClauseSplitter()
    return [*splitter.push(text), *splitter.flush()]
