"""Normalisation for scoring and for display."""

from __future__ import annotations

from voicebot.text.display import for_display, spoken_to_digits
from voicebot.text.scoring import for_scoring


def test_scoring_normalisation_ignores_typography_and_spells_numbers():
    assert for_scoring("And Mr. John Dashwood, 10 of clubs!") == \
        "and mister john dashwood ten of clubs"
    assert for_scoring("cold-hearted, ill-disposed") == "cold hearted ill disposed"
    assert for_scoring("Don't stop: 21st, 3.5%") == \
        "don't stop twenty first three point five percent"
    assert for_scoring("  ") == ""
    assert for_scoring("<|endoftext|>[noise] ok") == "ok"


def test_display_and_numbers_back_to_digits():
    assert for_display("  hello   world ") == "Hello world"
    assert spoken_to_digits("eight of spades twenty one") == "8 of spades 21"
    assert spoken_to_digits("two hundred five") == "205"
    assert spoken_to_digits("five five") == "5 5"
