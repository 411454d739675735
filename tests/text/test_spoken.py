"""The voice's normaliser: written text -> the words a voice reads."""

from __future__ import annotations

import pytest

from voicebot.text.spoken import normalize


@pytest.mark.parametrize("written, spoken", [
    ("It costs $3.50.", "It costs three dollars and fifty cents."),
    ("$1", "one dollar"),
    ("€1,200", "one thousand two hundred euros"),
    ("£5", "five pounds"),
    ("$2.5 million", "two point five million dollars"),
    ("45% more", "forty-five percent more"),
    ("the 1st and 23rd", "the first and twenty-third"),
    ("on 2026-11-23", "on November twenty-third, twenty twenty-six"),
    ("Nov. 5th, 2024", "November fifth, twenty twenty-four"),
    ("at 14:05", "at fourteen oh five"),
    ("at 3:30 pm", "at three thirty P M"),
    ("at 7:00", "at seven o'clock"),
    ("in 1999", "in nineteen ninety-nine"),
    ("3.14", "three point one four"),
    ("-4 degrees", "minus four degrees"),
    ("1,234,567", "one million two hundred and thirty-four thousand five hundred and "
                  "sixty-seven"),
    ("pages 5-10", "pages five to ten"),
    ("on 11/23/2026", "on November twenty-third, twenty twenty-six"),
    ("1/2 cup", "one half cup"),
    ("3/4 of it", "three quarters of it"),
    ("2/3 done", "two thirds done"),
    ("at 60 km/h", "at sixty kilometers per hour"),
    ("it is 21°C", "it is twenty-one degrees Celsius"),
    ("call 555-1234", "call five five five, one two three four"),
    ("Dr. Smith and Mr. Jones", "doctor Smith and mister Jones"),
    ("e.g. this", "for example this"),
    ("5 kg", "five kilograms"),
    ("salt & pepper", "salt and pepper"),
    ("a @ b", "a at b"),
    ("see https://example.com/x.", "see a link."),
    ("mail bob@example.com", "mail bob at example dot com"),
    ("**bold** and `code`", "bold and code"),
    ("“quoted” — really", "\"quoted\", really"),
])
def test_normalize(written, spoken):
    assert normalize(written) == spoken


def test_emoji_and_symbols_only_leave_nothing():
    assert normalize("😀🎉👍") == ""


def test_emoji_inside_text_is_dropped():
    assert normalize("I love it 😍 so much") == "I love it so much"


def test_non_english_text_passes_through():
    assert normalize("Привет мир") == "Привет мир"
