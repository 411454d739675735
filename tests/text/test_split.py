"""The one rule for cutting speech: sentences, the first piece, long pieces."""

from __future__ import annotations

import pytest

from voicebot.text.split import (
    FIRST_PIECE_MAX_WORDS,
    LONG_PIECE_CHARS,
    first_clause,
    first_piece_end,
    next_cut,
    split_sentence,
    split_sentences,
)


def list_split(sentence: str, first: bool = False) -> list[str]:
    return list(split_sentence(sentence, first))


def test_non_english_sentences_end_at_their_full_stops():
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


def test_abbreviations_decimals_initials_and_list_numbers_end_no_sentence():
    text = ("It costs 3.5 dollars, e.g. a coffee. Dr. Smith agrees. U.S. law says so. "
            "On Nov. 5 we met.\n1. first\n2. second")
    assert split_sentences(text) == ["It costs 3.5 dollars, e.g. a coffee.",
                                     "Dr. Smith agrees.", "U.S. law says so.",
                                     "On Nov. 5 we met.", "1. first", "2. second"]


def test_sentences_end_at_quotes_ellipses_and_line_breaks():
    assert split_sentences('He said "stop." Then… nothing!\nDone') == \
        ['He said "stop."', "Then…", "nothing!", "Done"]


def test_a_long_first_sentence_is_cut_at_a_clause_of_a_few_words():
    # The first boundary with three words or more wins: "Well," alone is choppy.
    assert list_split("Well, the capital of France, as you know, is Paris.", first=True) \
        == ["Well, the capital of France,", "as you know, is Paris."]
    # Only the first piece of a reply is cut short.
    assert list_split("Well, the capital of France, as you know, is Paris.") == \
        ["Well, the capital of France, as you know, is Paris."]


def test_a_first_sentence_without_punctuation_is_capped():
    words = [f"word{i}" for i in range(40)]
    first, rest = list_split(" ".join(words), first=True)
    assert first.split() == words[:FIRST_PIECE_MAX_WORDS]
    assert rest.split() == words[FIRST_PIECE_MAX_WORDS:]


def test_long_sentences_are_cut_at_their_last_clause_within_the_limit():
    long = ("This sentence goes on and on, " * 12).strip() + "."
    parts = list_split(long)
    assert len(parts) == 2 and all(len(p) <= LONG_PIECE_CHARS for p in parts)
    assert parts[0].endswith(",") and " ".join(parts) == long
    spaces_only = " ".join(["word"] * 100)
    assert all(len(p) <= LONG_PIECE_CHARS for p in list_split(spaces_only))


@pytest.mark.parametrize("sentence", [
    "Well, the capital of France, as you know, is Paris.",
    "Sure, I can set a timer for ten minutes.",
    "The fox jumps over the dog and then runs into the forest.",
    " ".join(f"word{i}" for i in range(30)),
    "Yes, " + " ".join(f"word{i}" for i in range(30)),
    "Short and sweet.",
])
def test_a_streamed_prefix_never_cuts_where_the_whole_sentence_would_not(sentence):
    whole = first_piece_end(sentence)
    for end in range(1, len(sentence)):
        cut = first_piece_end(sentence[:end], complete=False)
        assert cut is None or cut == whole, sentence[:end]


def test_next_cut_waits_for_a_sentence_end_unless_the_text_is_final():
    assert next_cut("It is known for the", first=False) is None
    assert next_cut("It is known for the", first=False, final=True) == 19
    assert next_cut("It is known. For", first=False) == 12
    assert next_cut("Dr. Who", first=False) is None
    assert next_cut("   ", first=True, final=True) is None


def test_a_huge_sentence_is_cut_lazily_in_linear_time():
    import itertools
    import time

    text = "word, " * 200_000  # 1.2 MB, one sentence
    started = time.perf_counter()
    parts = list(split_sentence(text))
    assert time.perf_counter() - started < 5
    assert all(len(p) <= LONG_PIECE_CHARS for p in parts)
    assert next(itertools.islice(split_sentence("x" * 1000), 1)) == "x" * LONG_PIECE_CHARS
