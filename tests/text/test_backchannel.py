"""What the user says over a paused reply: a backchannel (the reply goes on) or not."""

from __future__ import annotations

import pytest

from voicebot.text.backchannel import (
    backchannel_units,
    has_words,
    is_backchannel,
    lets_reply_go_on,
)


@pytest.mark.parametrize("text", [
    "Mm-hmm.", "Mhm.", "Uh-huh.", "Hmm.", "Yeah.", "Okay.", "OK", "Right.", "I see.",
    "Oh, I see.", "Uh-huh, yeah.", "Right, right.", "Yes.", "Got it.", "All right.",
    "mm hmm okay", " Sure! ", "MMM.", "Mmmm", "Uhh.", "Hmmm, okay.", "Emm-",
])
def test_listeners_signals_are_backchannels(text):
    assert is_backchannel(text) and lets_reply_go_on(text)


@pytest.mark.parametrize("text", [
    "No.", "Wait.", "Stop.", "Wait, what about Rome?", "What is the capital of France?",
    "Thank you for the help.", "Okay, but what about tomorrow?", "I see a problem.", "Yeah, no.",
    "yeah yeah yeah yeah",  # four units: more than a murmur
    "in my mom", "Ma'am.", "Mom.", "Home.",
])
def test_real_words_interrupt(text):
    assert not is_backchannel(text) and not lets_reply_go_on(text)


@pytest.mark.parametrize("text", ["", "   ", "[BLANK_AUDIO]", "(coughs)", "...", "-",
                                  "You", " you.", "Thank you."])  # Whisper on echo
def test_no_words_lets_the_reply_go_on_but_is_no_backchannel(text):
    assert not has_words(text) and not is_backchannel(text) and lets_reply_go_on(text)


def test_phrases_count_once_and_the_longest_wins():
    assert backchannel_units("Oh, I see. Makes sense.") == ["oh", "i see", "makes sense"]
    assert backchannel_units("That makes sense") == ["that makes sense"]
    assert backchannel_units("see") is None  # "see" alone is not one
