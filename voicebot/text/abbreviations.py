"""The one abbreviation table: what a voice says, what scoring compares, where sentences end.

Each entry serves three readers:

- the sentence splitter (``voicebot.text.split``): the period of a title or a Latin
  abbreviation ("Dr. Smith", "e.g. this") does not end a sentence;
- the voice's normaliser (``voicebot.text.spoken``): "Dr." is read "doctor", "5 kg"
  "five kilograms";
- the scoring normaliser (``voicebot.text.scoring``): "Mr" and "mister" are the same
  word when a transcript is scored. Only unambiguous words are expanded there ("no" is a
  word far more often than "number").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Abbreviation:
    spoken: str
    # Its period does not end a sentence: a title before a name, "e.g." before an example.
    before_name: bool = False
    # "after": only an abbreviation before a number ("No. 5"); "before": only after one
    # ("5 kg"), and then read even without a period.
    number: str = ""
    # The word a transcript is scored as ("" : left as written).
    scored: str = ""


ABBREVIATIONS: dict[str, Abbreviation] = {
    "mr": Abbreviation("mister", before_name=True, scored="mister"),
    "mrs": Abbreviation("missus", before_name=True, scored="missus"),
    # A voice says "miz"; a recogniser writes what it hears as "miss".
    "ms": Abbreviation("miz", before_name=True, scored="miss"),
    "dr": Abbreviation("doctor", before_name=True, scored="doctor"),
    "prof": Abbreviation("professor", before_name=True),
    "st": Abbreviation("saint", before_name=True, scored="saint"),
    "jr": Abbreviation("junior", before_name=True),
    "sr": Abbreviation("senior", before_name=True),
    "vs": Abbreviation("versus", before_name=True, scored="versus"),
    # Scored as one word, so "etc." and "etcetera" match.
    "etc": Abbreviation("et cetera", scored="etcetera"),
    "approx": Abbreviation("approximately", before_name=True),
    "dept": Abbreviation("department", before_name=True),
    "no": Abbreviation("number", before_name=True, number="after"),
    "fig": Abbreviation("figure", before_name=True, number="after"),
    "mt": Abbreviation("mount", before_name=True),
    # Units: only after a number ("5 kg"), and then read even without a period.
    **{word: Abbreviation(spoken, number="before") for word, spoken in (
        ("ft", "feet"), ("min", "minutes"), ("hr", "hours"), ("hrs", "hours"),
        ("sec", "seconds"), ("kg", "kilograms"), ("km", "kilometers"),
        ("cm", "centimeters"), ("mm", "millimeters"), ("lb", "pounds"), ("lbs", "pounds"),
        ("oz", "ounces"))},
    # Dotted ones, matched with their dots.
    "e.g.": Abbreviation("for example", before_name=True),
    "i.e.": Abbreviation("that is", before_name=True),
    "a.m.": Abbreviation("A M"),
    "p.m.": Abbreviation("P M"),
}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# "Nov." (and "Sept.") before a day: its period does not end a sentence either.
MONTH_ABBREVIATIONS = {**{m[:3].lower(): i for i, m in enumerate(MONTHS, 1)}, "sept": 9}

# Words (lower case, without their final period) after which "." does not end a sentence.
NO_SENTENCE_END = frozenset(
    {word.rstrip(".") for word, a in ABBREVIATIONS.items() if a.before_name}
    | set(MONTH_ABBREVIATIONS))

# Scoring: word -> the word it counts as.
SCORED = {word: a.scored for word, a in ABBREVIATIONS.items() if a.scored}
