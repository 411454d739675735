"""Written text -> the words a voice reads: the voice's normaliser (English rules).

A voice reads letters, not notation: "$3.50" must become "three dollars and fifty
cents" before phonemes are made. ``normalize`` spells out currencies, dates, times,
numbers, units, abbreviations (``voicebot.text.abbreviations``) and symbols, reads a link
as "a link" and "bob@example.com" as "bob at example dot com", and drops emoji and
markup marks (``voicebot.text.cleanup``). Other scripts pass through: whether a voice can
read them is its own business (``cleanup.drop_other_scripts``).

It works on one piece at a time; where a text is cut is ``voicebot.text.split``'s job.
"""

from __future__ import annotations

import re
import unicodedata

from num2words import num2words

from voicebot.text.abbreviations import ABBREVIATIONS, MONTH_ABBREVIATIONS, MONTHS
from voicebot.text.cleanup import EMAIL, URL, drop_unspeakable

# Dotted ones ("e.g.") are matched with their dots, the others as words.
_DOTTED = {word: a.spoken for word, a in ABBREVIATIONS.items() if "." in word}
_WORDS = {word: a for word, a in ABBREVIATIONS.items() if "." not in word}

_MONTH_LOOKUP = {m.lower(): i for i, m in enumerate(MONTHS, 1)} | MONTH_ABBREVIATIONS

_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"),
               "¥": ("yen", "yen", "", "")}
_SCALES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion",
           "thousand": "thousand", "million": "million", "billion": "billion",
           "trillion": "trillion"}

_UNITS = {"km/h": "kilometers per hour", "mph": "miles per hour", "m/s": "meters per second",
          "°C": "degrees Celsius", "°F": "degrees Fahrenheit"}
_SYMBOLS = {"&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "%": " percent ",
            "°": " degrees ", "#": " number ", "×": " times ", "÷": " divided by ",
            "<": " less than ", ">": " greater than ", "~": " about ", "½": " one half ",
            "¼": " one quarter ", "¾": " three quarters ", "/": " slash ",
            "§": " section ", "№": " number "}
# Marks a voice never reads (a reply's markdown around them went in ``clean_for_speech``).
_MARKUP = re.compile(r"[*_`|\\^]+|\[|\]|\{|\}")
# Phone-like digit groups are read digit by digit; "5-10" is a range.
_PHONE = re.compile(r"\b(?:\+?\d{1,3}[ -])?(?:\(?\d{3}\)?[ -])?\d{3}-\d{4}\b")
_RANGE = re.compile(r"\b(\d+)\s?[-–]\s?(\d+)\b")
_DASHES = re.compile(r"\s+[–—-]\s+|[–—]")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'",
                         "…": "...", "\u00a0": " "})

_NUM = r"\d{1,3}(?:,\d{3})+|\d+"  # 1,234,567 or 1234567


def _plain_number(text: str) -> int:
    return int(text.replace(",", ""))


def _say_int(n: int) -> str:
    # num2words writes "one thousand, two hundred": a comma would make the voice pause.
    return num2words(n, lang="en").replace(",", "")


def _say_decimal(whole: str, fraction: str) -> str:
    digits = " ".join(num2words(int(d), lang="en") for d in fraction)
    return f"{_say_int(_plain_number(whole))} point {digits}"


def _say_year(year: int) -> str:
    return num2words(year, lang="en", to="year")


def _currency(match: re.Match) -> str:
    symbol, whole, cents, scale = match.group(1), match.group(2), match.group(3), match.group(4)
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    if scale:
        amount = _say_decimal(whole, cents) if cents else _say_int(_plain_number(whole))
        return f" {amount} {_SCALES[scale.lower()]} {many} "
    units = _plain_number(whole)
    words = f"{_say_int(units)} {one if units == 1 else many}"
    if cents and sub_one:
        sub = int(cents.ljust(2, "0")[:2])
        if sub:
            part = f"{_say_int(sub)} {sub_one if sub == 1 else sub_many}"
            words = part if units == 0 else f"{words} and {part}"
    return f" {words} "


def _time(match: re.Match) -> str:
    hours, minutes, suffix = int(match.group(1)), int(match.group(2)), match.group(3)
    if hours > 24 or minutes > 59:
        return match.group(0)
    spoken_hours = _say_int(hours)
    if minutes == 0:
        spoken = f"{spoken_hours} o'clock" if suffix or hours <= 12 else f"{spoken_hours} hundred"
    elif minutes < 10:
        spoken = f"{spoken_hours} oh {_say_int(minutes)}"
    else:
        spoken = f"{spoken_hours} {_say_int(minutes)}"
    if suffix:
        spoken += " " + " ".join(suffix.replace(".", "").upper())
    return f" {spoken} "


def _iso_date(match: re.Match) -> str:
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f" {MONTHS[month - 1]} {num2words(day, lang='en', to='ordinal')}, {_say_year(year)} "


def _month_day(match: re.Match) -> str:
    month_word, day, year = match.group(1), int(match.group(2)), match.group(3)
    month = MONTHS[_MONTH_LOOKUP[month_word.lower().rstrip(".")] - 1]
    if not 1 <= day <= 31:
        return match.group(0)
    spoken = f"{month} {num2words(day, lang='en', to='ordinal')}"
    if year:
        spoken += f", {_say_year(int(year))}"
    return f" {spoken} "


def _digits(match: re.Match) -> str:
    groups = re.findall(r"\d+", match.group(0))
    return " " + ", ".join(" ".join(num2words(int(d), lang="en") for d in g) for g in groups) + " "


def _us_date(match: re.Match) -> str:
    month, day, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    return f" {MONTHS[month - 1]} {num2words(day, lang='en', to='ordinal')}, {_say_year(year)} "


_FRACTION_NAMES = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _fraction(match: re.Match) -> str:
    top, bottom = int(match.group(1)), int(match.group(2))
    if bottom in _FRACTION_NAMES:
        one, many = _FRACTION_NAMES[bottom]
    else:
        one = num2words(bottom, lang="en", to="ordinal")
        many = one + "s"
    return f" {_say_int(top)} {one if top == 1 else many} "


def _ordinal(match: re.Match) -> str:
    return num2words(_plain_number(match.group(1)), lang="en", to="ordinal")


def _number(match: re.Match) -> str:
    sign, whole, fraction = match.group(1), match.group(2), match.group(3)
    if fraction:
        spoken = _say_decimal(whole, fraction)
    elif "," not in whole and len(whole) == 4 and 1100 <= int(whole) <= 2099:
        spoken = _say_year(int(whole))  # "in 1999", "by 2030": read as years
    elif len(whole) > 15:
        spoken = " ".join(num2words(int(d), lang="en") for d in whole)  # a code, not a count
    else:
        spoken = _say_int(_plain_number(whole))
    return f" {'minus ' if sign else ''}{spoken} "


def _expand_abbreviations(text: str) -> str:
    for dotted, spoken in _DOTTED.items():
        text = re.sub(re.escape(dotted), spoken, text, flags=re.IGNORECASE)

    def replace(match: re.Match) -> str:
        word, dot = match.group(1), match.group(2)
        abbreviation = _WORDS.get(word.lower())
        if abbreviation is None:
            return match.group(0)
        after = text[match.end():match.end() + 3]
        before = text[max(0, match.start() - 3):match.start()]
        if abbreviation.number == "after" and not re.match(r"\s*\d", after):
            return match.group(0)
        if abbreviation.number == "before" and not re.search(r"\d\s*$", before):
            return match.group(0)
        if not dot and abbreviation.number != "before":
            return match.group(0)  # "Dr" without a dot may be a name; "ms" a unit
        return abbreviation.spoken

    return re.sub(r"\b([A-Za-z]+)(\.)?(?![\w'])", replace, text)


def normalize(text: str) -> str:
    """Written text -> words a voice can read (English rules; other scripts pass through)."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    for unit, spoken in _UNITS.items():  # before "km" alone becomes "kilometers"
        text = re.sub(r"(?<=\d)\s?" + re.escape(unit) + r"(?!\w)", " " + spoken, text)
    text = text.replace("°", " degrees ")  # a symbol (So) that the next line would drop
    text = drop_unspeakable(text)
    text = URL.sub(" a link ", text)
    text = EMAIL.sub(lambda m: f" {m.group(1)} at {m.group(2)} dot {m.group(3)} ", text)
    text = _MARKUP.sub(" ", text)
    text = _expand_abbreviations(text)
    text = re.sub(r"([$£€¥])\s?(" + _NUM + r")(?:\.(\d+))?(?:\s?(k|mn|m|bn|b|thousand|million"
                  r"|billion|trillion)\b)?", _currency, text, flags=re.IGNORECASE)
    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", _iso_date, text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", _us_date, text)  # US order: m/d/y
    text = re.sub(r"(?<![\d/])(\d{1,2})/([2-9]|10)(?![\d/])", _fraction, text)
    months = "|".join(sorted(_MONTH_LOOKUP, key=len, reverse=True))
    text = re.sub(r"\b(" + months + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?",
                  _month_day, text, flags=re.IGNORECASE)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?(?=\W|$)", _time, text,
                  flags=re.IGNORECASE)
    text = _PHONE.sub(_digits, text)
    text = _RANGE.sub(r"\1 to \2", text)
    text = re.sub(r"(" + _NUM + r"(?:\.\d+)?)\s?%", r"\1 percent", text)
    text = re.sub(r"\b(" + _NUM + r")(?:st|nd|rd|th)\b", _ordinal, text, flags=re.IGNORECASE)
    text = re.sub(r"(?<![\w.])(-)?(" + _NUM + r")(?:\.(\d+))?(?![\d])", _number, text)
    text = _DASHES.sub(", ", text)
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)  # ", ," left by removed symbols
    return text.strip(" ,;:")
