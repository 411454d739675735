"""What a voice must never read: markup, links, addresses, emoji, other scripts."""

from __future__ import annotations

import pytest

from voicebot.text.cleanup import (
    clean_for_speech,
    drop_other_scripts,
    drop_unspeakable,
    is_latin_letter,
)


def test_clean_for_speech_keeps_plain_text():
    text = "It's 5 o'clock, and the café opens at 9 a.m. (probably)."
    assert clean_for_speech(text) == text


def test_links_and_addresses_are_dropped():
    text = "Visit https://example.com/a?b=1 or www.example.org, then mail bob@example.com."
    assert clean_for_speech(text) == "Visit or, then mail."


@pytest.mark.parametrize("text", ["😀🎉👍🏽", "❤️", "👨‍👩‍👧", "★ © ♪", "\x07"])
def test_emoji_only_text_leaves_nothing(text):
    assert clean_for_speech(text) == ""
    assert not drop_unspeakable(text).strip()


def test_emoji_parts_and_skin_tones_go_but_letters_and_accents_stay():
    assert drop_unspeakable("café 1️⃣ 👍🏽 naïve").split() == ["café", "1", "naïve"]


def test_chinese_is_skipped_and_counted():
    assert drop_other_scripts("Hello 你好 world") == ("Hello    world", 2)
    assert drop_other_scripts("Crème brûlée") == ("Crème brûlée", 0)
    assert is_latin_letter("é") and not is_latin_letter("你")
