"""The streaming splitter: a reply as it streams -> clean, speakable pieces."""

from __future__ import annotations

import pytest

from voicebot.lm.speech_shaping import ClauseSplitter, speakable


def stream(text: str, step: int = 3) -> tuple[list[tuple[int, str]], list[str]]:
    """Feed ``text`` in small chunks; (position at which each piece came out, flushed)."""
    splitter = ClauseSplitter()
    out = []
    for start in range(0, len(text), step):
        for piece in splitter.push(text[start:start + step]):
            out.append((start + step, piece))
    return out, splitter.flush()


def test_sentences_come_out_as_soon_as_they_end():
    text = "The capital of France is Paris. It is known for the Eiffel Tower. Bye"
    out, rest = stream(text)
    assert [piece for _, piece in out] == ["The capital of France is Paris.",
                                          "It is known for the Eiffel Tower."]
    # The first sentence is out right after the space that follows its period.
    assert out[0][0] <= text.index(" It") + 3
    assert rest == ["Bye"]


def test_first_clause_is_cut_early_at_a_comma():
    out, rest = stream("Well, the capital of France, as you know, is Paris. Yes, indeed.")
    pieces = [piece for _, piece in out] + rest
    assert pieces[0] == "Well, the capital of France,"  # "Well," alone is too short
    assert pieces[1:] == ["as you know, is Paris.", "Yes, indeed."]


def test_first_piece_without_punctuation_is_cut_after_a_few_words():
    words = " ".join(f"word{i}" for i in range(40))
    out, _ = stream(words + " ")
    assert out and len(out[0][1].split()) <= 17


def test_numbers_abbreviations_and_initials_do_not_end_sentences():
    assert speakable("It costs 3.50 dollars. Dr. Smith and J. R. Tolkien agree, e.g. me. "
                     "Ok.") == ["It costs 3.50 dollars.",
                                "Dr. Smith and J. R. Tolkien agree, e.g. me.", "Ok."]


def test_markdown_is_stripped():
    text = ("# Title\n**Paris** is the _capital_ of `France`.\n- first item\n2. second item\n"
            "> a quote\nSee [the guide](https://example.com/guide) for more.\n---\n")
    assert speakable(text) == ["Title", "Paris is the capital of France.", "first item",
                               "second item", "a quote", "See the guide for more."]


def test_code_blocks_urls_and_emoji_are_not_read():
    text = ("Here is how 😀:\n```python\nprint('hello')\nx = 1\n```\nVisit https://x.org or "
            "www.example.com today! 🎉🎉 Thanks 👍🏽.")
    pieces = speakable(text)
    assert pieces == ["Here is how:", "Visit or today!", "Thanks."]
    assert not any("print" in p or "http" in p or "www" in p for p in pieces)


def test_a_code_fence_split_across_pushes_is_still_removed():
    splitter = ClauseSplitter()
    out = []
    for chunk in ["Look at this. `", "`", "`\nsecret_code()\n`", "``\nDone here. "]:
        out += splitter.push(chunk)
    out += splitter.flush()
    assert out == ["Look at this.", "Done here."]


def test_unclosed_code_block_is_dropped_at_the_end():
    assert speakable("Try this:\n```\nrm -rf /\n") == ["Try this:"]


@pytest.mark.parametrize("text", ["", "   ", "***", "😀😀", "```\ncode only\n```", "- \n# "])
def test_nothing_speakable_gives_nothing(text):
    assert speakable(text) == []


def test_repeated_sentences_are_dropped_and_a_loop_is_cut_off():
    text = "I like cats. " + "Cats are great. " * 6 + "New idea here. "
    splitter = ClauseSplitter()
    pieces = splitter.push(text) + splitter.flush()
    assert pieces == ["I like cats.", "Cats are great."]
    assert splitter.looping


def test_short_repeats_like_yes_are_kept():
    assert speakable("Yes. Yes. I agree.") == ["Yes.", "Yes.", "I agree."]


def test_long_sentences_are_cut_at_a_comma():
    long = ("This sentence goes on and on, " * 12).strip()
    pieces = speakable("Start. " + long + ".")
    assert pieces[0] == "Start."
    assert all(len(p) <= 230 for p in pieces)
    assert " ".join(pieces[1:]).replace(" ", "") == (long + ".").replace(" ", "")
