"""Recognised text for display: tidy spacing and capitals, numbers back to digits.

``for_display`` only tidies whitespace and capitalises the first letter;
``spoken_to_digits`` goes the other way from scoring for simple cardinal numbers
("twenty one" -> "21").
"""

from __future__ import annotations


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
