"""The voice's text front end: a whole text -> normalized pieces (no models)."""

from __future__ import annotations

import itertools

from voicebot.tts.text import MAX_PIECE_CHARS, pieces


def test_emoji_and_symbols_only_leave_nothing():
    assert list(pieces("😀 🎉 👍")) == []
    assert list(pieces("")) == []
    assert list(pieces("   \n\t  ")) == []
    assert list(pieces("... !!! ???")) == []


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


def test_a_text_given_to_the_voice_is_cut_where_the_chat_side_cuts_it():
    from voicebot.lm.speech_shaping import speakable

    for text in ("Sure, I can set a timer for ten minutes. It will ring at noon, I promise.",
                 "Well, the capital of France, as you know, is Paris. Yes, indeed."):
        assert [p.text for p in pieces(text)] == speakable(text)


def test_a_cut_keeps_its_clause_mark_and_pieces_are_normalised():
    parts = list(pieces("Sure, it costs $3.50. See https://example.com/x."))
    assert [p.text for p in parts] == ["Sure, it costs three dollars and fifty cents.",
                                       "See a link."]
    assert next(pieces("Sure — I can set a timer for ten minutes.")).text == "Sure,"


def test_other_scripts_are_skipped_for_a_latin_only_voice(caplog):
    assert [p.text for p in pieces("你好。Hello there.", latin_only=True)] == ["Hello there."]
    assert "skipped 2 characters" in caplog.text
    assert list(pieces("你好。", latin_only=True)) == []
