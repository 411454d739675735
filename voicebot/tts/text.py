"""Text front end for speech: normalise written text, split it into speakable pieces.

A voice reads letters, not notation: "$3.50" must become "three dollars and fifty
cents" before phonemes are made. The splitter then cuts the text into sentences, and
the first sentence into a short leading clause, so the first audio can be synthesised
(and heard) while the rest is still waiting. ``pieces`` works lazily over any length of
input: it normalises one sentence at a time, so a 5,000-character reply never turns into
one huge phoneme sequence or one huge audio array.

This module is about complete text. Splitting the chat model's token stream as it
arrives is the LM's job (``voicebot.lm.speech_shaping``); both end up here per sentence.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from num2words import num2words

log = logging.getLogger(__name__)

# --- normalisation -----------------------------------------------------------------

_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor",
    "st": "saint", "jr": "junior", "sr": "senior", "vs": "versus", "etc": "et cetera",
    "approx": "approximately", "dept": "department", "no": "number", "fig": "figure",
    "mt": "mount", "ft": "feet", "min": "minutes", "hr": "hours", "hrs": "hours",
    "sec": "seconds", "kg": "kilograms", "km": "kilometers", "cm": "centimeters",
    "mm": "millimeters", "lb": "pounds", "lbs": "pounds", "oz": "ounces",
}
# Abbreviations that only make sense before a number ("No. 5", "5 kg").
_NEEDS_NUMBER_AFTER = {"no", "fig"}
_NEEDS_NUMBER_BEFORE = {"ft", "min", "hr", "hrs", "sec", "kg", "km", "cm", "mm", "lb", "lbs",
                        "oz"}
_LATIN = {"e.g.": "for example", "i.e.": "that is", "a.m.": "A M", "p.m.": "P M"}

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_MONTH_LOOKUP = {m.lower(): i for i, m in enumerate(_MONTHS, 1)}
_MONTH_LOOKUP.update({m[:3].lower(): i for i, m in enumerate(_MONTHS, 1)})
_MONTH_LOOKUP["sept"] = 9

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
# Markup a chat model may emit that should never be read aloud.
_MARKUP = re.compile(r"[*_`|\\^]+|\[|\]|\{|\}")
_URL = re.compile(r"\b(?:https?://|www\.)\S+?(?=[.,;:!?)]*(?:\s|$))", re.IGNORECASE)
# Phone-like digit groups are read digit by digit; "5-10" is a range.
_PHONE = re.compile(r"\b(?:\+?\d{1,3}[ -])?(?:\(?\d{3}\)?[ -])?\d{3}-\d{4}\b")
_RANGE = re.compile(r"\b(\d+)\s?[-–]\s?(\d+)\b")
_EMAIL = re.compile(r"\b([\w.+-]+)@([\w-]+)\.([\w.]+)\b")
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
    return f" {_MONTHS[month - 1]} {num2words(day, lang='en', to='ordinal')}, {_say_year(year)} "


def _month_day(match: re.Match) -> str:
    month_word, day, year = match.group(1), int(match.group(2)), match.group(3)
    month = _MONTHS[_MONTH_LOOKUP[month_word.lower().rstrip(".")] - 1]
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
    return f" {_MONTHS[month - 1]} {num2words(day, lang='en', to='ordinal')}, {_say_year(year)} "


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
    for latin, spoken in _LATIN.items():
        text = re.sub(re.escape(latin), spoken, text, flags=re.IGNORECASE)

    def replace(match: re.Match) -> str:
        word, dot = match.group(1), match.group(2)
        key = word.lower()
        if key not in _ABBREVIATIONS:
            return match.group(0)
        after = text[match.end():match.end() + 3]
        before = text[max(0, match.start() - 3):match.start()]
        if key in _NEEDS_NUMBER_AFTER and not re.match(r"\s*\d", after):
            return match.group(0)
        if key in _NEEDS_NUMBER_BEFORE and not re.search(r"\d\s*$", before):
            return match.group(0)
        if not dot and key not in _NEEDS_NUMBER_BEFORE:
            return match.group(0)  # "Dr" without a dot may be a name; "ms" a unit
        return _ABBREVIATIONS[key]

    return re.sub(r"\b([A-Za-z]+)(\.)?(?![\w'])", replace, text)


def _drop_unspeakable(text: str) -> str:
    """Emoji, pictographs and control characters carry no speech: drop them."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("So", "Sk", "Co", "Cn", "Cs") or (category[0] == "C" and ch not in "\n\t"):
            kept.append(" ")
        else:
            kept.append(ch)
    return "".join(kept)


def normalize(text: str) -> str:
    """Written text -> words a voice can read (English rules; other scripts pass through)."""
    text = unicodedata.normalize("NFC", text).translate(_QUOTES)
    for unit, spoken in _UNITS.items():  # before "km" alone becomes "kilometers"
        text = re.sub(r"(?<=\d)\s?" + re.escape(unit) + r"(?!\w)", " " + spoken, text)
    text = text.replace("°", " degrees ")  # a symbol (So) that the next line would drop
    text = _drop_unspeakable(text)
    text = _URL.sub(" a link ", text)
    text = _EMAIL.sub(lambda m: f" {m.group(1)} at {m.group(2)} dot {m.group(3)} ", text)
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


# --- splitting ---------------------------------------------------------------------

# A sentence ends at . ! ? (possibly repeated or followed by a closing quote) before
# whitespace, or at a line break. Abbreviations were expanded by ``normalize`` first.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|(?<=[。！？])\s*|\n\s*")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
# Words a clause naturally begins with: a fair place to cut a long unpunctuated sentence.
_CLAUSE_STARTERS = {"and", "but", "or", "so", "because", "which", "that", "when", "while",
                    "if", "although", "though", "where", "who", "since", "until", "unless",
                    "then", "with", "to", "for"}

MAX_PIECE_CHARS = 300  # longer sentences are cut at clauses, then at words
FIRST_PIECE_MIN_WORDS = 3  # before a conjunction: "I think | that ..." is too short
FIRST_PIECE_MAX_WORDS = 6


@dataclass(frozen=True)
class Piece:
    text: str
    end_of_sentence: bool


def _sentences(text: str) -> Iterator[str]:
    """Split raw text lazily into sentences (no normalisation yet)."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start:match.start()].strip()
        if candidate and _ends_with_abbreviation(candidate):
            continue  # "Dr. Smith", "J. K. Rowling": the dot does not end the sentence
        if candidate:
            yield candidate
        start = match.end()
    tail = text[start:].strip()
    if tail:
        yield tail


_TITLES = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "no", "fig", "mt",
           "e.g", "i.e", "approx", "dept", *(m[:3].lower() for m in _MONTHS), "sept"}


def _ends_with_abbreviation(sentence: str) -> bool:
    if not sentence.endswith("."):
        return False
    last = sentence.rsplit(None, 1)[-1].lower().rstrip(".")
    # "J." or "U.S" (single letters with dots) are initials; titles precede a name.
    return last in _TITLES or bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", last))


def split_sentences(text: str) -> list[str]:
    return list(_sentences(text))


def _cut_long(sentence: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Keep pieces under ``limit`` characters: cut at clause punctuation, then at spaces."""
    if len(sentence) <= limit:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        while len(clause) > limit:
            cut = clause.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if pieces and len(pieces[-1]) + len(clause) + 1 <= limit:
            pieces[-1] = f"{pieces[-1]} {clause}"
        elif clause:
            pieces.append(clause)
    return [p for p in pieces if p]


def first_clause(sentence: str) -> tuple[str, str]:
    """Split a short leading clause off ``sentence``: (lead, rest); rest may be "".

    Cuts at the first comma/semicolon/colon ("Sure," is a fine first piece); without one,
    before a word that usually starts a clause ("and", "because"). Sentences of up to
    FIRST_PIECE_MAX_WORDS words stay whole. A short first piece is synthesised in a
    fraction of the time of the whole sentence, which is what the listener waits for.
    """
    words = sentence.split()
    if len(words) <= FIRST_PIECE_MAX_WORDS:
        return sentence, ""
    match = _CLAUSE_END.search(sentence)
    if match:
        lead = sentence[:match.start()]  # keeps its comma: the voice pauses naturally
        if len(lead.split()) <= 2 * FIRST_PIECE_MAX_WORDS:
            return lead, sentence[match.end():]
    for i in range(FIRST_PIECE_MIN_WORDS, min(len(words) - 2, FIRST_PIECE_MAX_WORDS + 1)):
        if words[i].lower().strip(",") in _CLAUSE_STARTERS:
            return " ".join(words[:i]), " ".join(words[i:])
    # No natural break: a cut mid-phrase would be heard as a wrong pause, so keep the
    # sentence whole (engines that stream within a sentence still start early).
    return sentence, ""


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


def pieces(text: str, split_first: bool = True, *, latin_only: bool = False
           ) -> Iterator[Piece]:
    """Normalised, speakable pieces of ``text``, produced lazily, in order.

    Each sentence is normalised on its own when reached. With ``split_first`` the first
    sentence that has words is split at a short clause (``first_clause``). With
    ``latin_only`` (English voices) letters of other scripts are skipped, with a log notice.
    """
    first = split_first
    for raw in _sentences(text):
        if latin_only:
            raw, dropped = drop_other_scripts(raw)
            if dropped:
                log.warning("skipped %d characters of a script this voice cannot read",
                            dropped)
        sentence = normalize(raw)
        if not any(ch.isalnum() for ch in sentence):
            continue  # punctuation or emoji only
        parts = _cut_long(sentence)
        if first:
            lead, rest = first_clause(parts[0])
            parts = [lead, *([rest] if rest else []), *parts[1:]]
            first = False
        for i, part in enumerate(parts):
            yield Piece(part, end_of_sentence=i == len(parts) - 1)
