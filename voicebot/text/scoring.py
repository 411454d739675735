"""Text normalisation for scoring: word error rates and the n-gram language models.

Scoring compares words, not typography: "Mr. Dashwood, 10 of clubs!" and
"mister dashwood ten of clubs" must count as the same. ``for_scoring`` lower-cases,
spells numbers as words (num2words), expands the abbreviations the table in
``voicebot.text.abbreviations`` marks for scoring, splits hyphenated words and drops
punctuation. The n-gram LMs (``voicebot.lm.ngram``, ``voicebot.lm.ngram_build``) are
built from and queried with the same words.
"""

from __future__ import annotations

import re
import unicodedata

from voicebot.text.abbreviations import SCORED

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)*)(st|nd|rd|th|s)?(?!\w)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})


def _number_words(match: re.Match) -> str:
    from num2words import num2words

    digits, suffix = match.group(1), (match.group(2) or "").lower()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", digits):
        digits = digits.replace(",", "")
    try:
        if suffix in ("st", "nd", "rd", "th"):
            return " " + num2words(int(digits), to="ordinal") + " "
        if "," in digits:  # "1,5" style decimal comma is ambiguous: read the digits
            return " " + " ".join(num2words(int(d)) for d in re.findall(r"\d+", digits)) + " "
        if "." in digits:
            return " " + num2words(float(digits)) + " "
        words = num2words(int(digits))
        if suffix == "s":  # "1990s" -> "nineteen nineties"
            words = words[:-1] + "ies" if words.endswith("y") else words + "s"
        return " " + words + " "
    except (ValueError, OverflowError):
        return " " + digits + " "


def for_scoring(text: str) -> str:
    """Lower-case words separated by single spaces, no punctuation, numbers spelled out."""
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = re.sub(r"<\|[^|]*\|>|\[[^\]]*\]|\([^)]*\)", " ", text)  # tags, [noise], (sounds)
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _NUMBER.sub(_number_words, text)
    text = text.lower()
    text = re.sub(r"[-\u2010-\u2015/]", " ", text)
    # Keep letters, digits and in-word apostrophes (don't, o'clock).
    text = re.sub(r"[^\w\s']|_", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    words = [SCORED.get(w, w) for w in text.split()]
    return " ".join(" ".join(words).replace(",", " ").split())


def words_for_scoring(text: str) -> list[str]:
    return for_scoring(text).split()
