"""The text front end: normalisation and splitting (no models)."""

from __future__ import annotations

import itertools

import pytest

from voicebot.tts.text import MAX_PIECE_CHARS, first_clause, normalize, pieces, split_sentences


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
    assert list(pieces("😀 🎉 👍")) == []
    assert list(pieces("")) == []
    assert list(pieces("   \n\t  ")) == []
    assert list(pieces("... !!! ???")) == []


def test_emoji_inside_text_is_dropped():
    assert normalize("I love it 😍 so much") == "I love it so much"


def test_non_english_text_passes_through():
    assert normalize("Привет мир") == "Привет мир"
    assert split_sentences("日本語です。はい。") == ["日本語です。", "はい。"]


def test_sentence_splitting_respects_abbreviations_and_initials():
    text = "Dr. Smith arrived. J. K. Rowling wrote it! Did he? Yes.\nNew line"
    assert split_sentences(text) == ["Dr. Smith arrived.", "J. K. Rowling wrote it!",
                                     "Did he?", "Yes.", "New line"]


def test_first_clause_cuts_at_a_comma():
    assert first_clause("Sure thing, I can set a timer for ten minutes.") == \
        ("Sure thing,", "I can set a timer for ten minutes.")


def test_first_clause_may_be_one_word():
    # "Sure," alone is a natural first phrase, and the quickest one to synthesise.
    assert first_clause("Sure, I can set a timer for ten minutes.")[0] == "Sure,"


def test_first_clause_cuts_before_a_conjunction():
    lead, rest = first_clause("The fox jumps over the dog and then runs into the forest.")
    assert lead == "The fox jumps over the dog"
    assert rest.startswith("and then")


def test_short_sentence_is_not_cut():
    assert first_clause("Hello there, friend.") == ("Hello there, friend.", "")


def test_only_the_first_sentence_is_split():
    parts = list(pieces("Well now, this is the first sentence of two. Then, a second one "
                        "follows here with a comma."))
    assert [p.text for p in parts] == ["Well now,", "this is the first sentence of two.",
                                       "Then, a second one follows here with a comma."]
    assert [p.end_of_sentence for p in parts] == [False, True, True]


def test_long_input_comes_in_bounded_pieces_lazily():
    sentence = "This is a fairly ordinary sentence with 12 words, give or take a few. "
    text = (sentence * 80)[:5000] + " " + "word " * 400  # 5,000 chars + a run-on tail
    stream = pieces(text)
    first = list(itertools.islice(stream, 3))  # lazily: nothing forces the rest
    assert len(first) == 3
    rest = list(stream)
    assert all(0 < len(p.text) <= MAX_PIECE_CHARS for p in first + rest)
    assert sum(len(p.text.split()) for p in first + rest) > 800
