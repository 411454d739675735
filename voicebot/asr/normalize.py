"""Text normalisation for scoring (WER, n-gram LM) and for display.

Scoring compares words, not typography: "Mr. Dashwood, 10 of clubs!" and
"mister dashwood ten of clubs" must count as the same. ``for_scoring`` lower-cases,
spells numbers as words (num2words), expands a few spoken abbreviations, splits
hyphenated words and drops punctuation. ``for_display`` only tidies whitespace and
capitalises the first letter; ``spoken_to_digits`` is the reverse direction for display
of simple cardinal numbers ("twenty one" -> "21").
"""

from __future__ import annotations

import re
import unicodedata

_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint",
    "vs": "versus", "etc": "etcetera",
}
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
    words = [_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(" ".join(words).replace(",", " ").split())


def words_for_scoring(text: str) -> list[str]:
    return for_scoring(text).split()


def for_display(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] if text else text


_UNITS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen"))}
_TENS = {w: 10 * i for i, w in enumerate((
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def spoken_to_digits(text: str) -> str:
    """Replace runs of spelled-out cardinal numbers by digits ("two hundred five" -> "205")."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if not run:
            return
        total, current = 0, 0
        for w in run:
            if w in _UNITS:
                current += _UNITS[w]
            elif w in _TENS:
                current += _TENS[w]
            elif w == "hundred":
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * _SCALES[w]
                current = 0
        out.append(str(total + current))
        run.clear()

    for word in text.split():
        key = word.lower().strip(".,!?")
        if key in _UNITS or key in _TENS or (key in _SCALES and run):
            # "five five" is two numbers, not ten: a unit after a unit starts a new run.
            if run and key in _UNITS and (run[-1] in _UNITS and _UNITS[run[-1]] >= 0
                                          and run[-1] not in _SCALES):
                flush()
            run.append(key)
            if word[-1:] in ".,!?":
                flush()
                out[-1] += word[-1]
        else:
            flush()
            out.append(word)
    flush()
    return " ".join(out)
