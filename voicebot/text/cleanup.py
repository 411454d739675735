"""Clean text up for speech: what a voice must never read out.

The chat model writes text for eyes: markdown, code, links, e-mail addresses and emoji,
and now and then a word in a script the voice cannot read. This module holds the one
definition of each:

- ``URL`` and ``EMAIL``: the patterns of a link and an address (the chat side drops
  them, the voice's normaliser reads a link as "a link" and spells an address out);
- ``drop_unspeakable``: emoji, pictographs, their joiners and modifiers, control
  characters;
- ``drop_other_scripts``: letters an English voice cannot read (espeak would say
  "Chinese letter" for each one);
- ``clean_for_speech``: a piece of a reply without its markdown (the chat side cleans
  every piece with it before the voice gets it; code blocks it drops whole itself).
"""

from __future__ import annotations

import re
import unicodedata

URL = re.compile(r"\b(?:https?://|ftp://|www\.)\S+?(?=[.,;:!?)\]]*(?:\s|$))", re.IGNORECASE)
# Groups: the name, the domain, the rest ("bob", "example", "com").
EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+)\.([\w.]+)\b")

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

# Joiners and variation selectors of emoji sequences, and the keycap mark ("1️⃣").
_EMOJI_PARTS = frozenset("\u200d\ufe0e\ufe0f\u20e3")


def is_unspeakable(ch: str) -> bool:
    """An emoji, pictograph, symbol modifier or control character: no speech in it."""
    if ch in _EMOJI_PARTS:
        return True
    category = unicodedata.category(ch)
    # So: pictographs, dingbats, arrows; Sk: modifiers (emoji skin tones among them);
    # Co/Cn/Cs: private use, unassigned, broken surrogates; other C*: controls.
    return category in ("So", "Sk", "Co", "Cn", "Cs") or (category[0] == "C"
                                                          and ch not in "\n\t")


def drop_unspeakable(text: str) -> str:
    """``text`` with every unspeakable character replaced by a space."""
    return "".join(" " if is_unspeakable(ch) else ch for ch in text)


def is_latin_letter(ch: str) -> bool:
    """A letter of the Latin script (accented ones included)."""
    return unicodedata.name(ch, "").startswith("LATIN")


def drop_other_scripts(text: str) -> tuple[str, int]:
    """``text`` with letters of non-Latin scripts removed, and how many were removed.

    An English voice reads a Chinese character as the words "Chinese letter" (espeak's
    fallback), which is worse than silence: such runs are skipped, and the caller says so.
    """
    dropped = 0
    kept = []
    for ch in text:
        if ch.isalpha() and not is_latin_letter(ch):
            dropped += 1
            kept.append(" ")
        else:
            kept.append(ch)
    return "".join(kept), dropped


def clean_for_speech(text: str) -> str:
    """Text as it should be read aloud: no markup, links, code marks or emoji.

    Returns "" when nothing speakable is left (only punctuation or symbols).
    """
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = URL.sub(" ", text)
    text = EMAIL.sub(" ", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text = _RULE.sub(" ", text)
    text = _LINE_MARKUP.sub(" ", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _LEFTOVER_MARKS.sub(" ", text)
    text = drop_unspeakable(text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = text.lstrip(",.;:!?)]}- ")
    return text if _SPEAKABLE.search(text) else ""

