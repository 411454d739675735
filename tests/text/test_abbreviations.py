"""The one abbreviation table serves the splitter, the voice and scoring alike."""

from __future__ import annotations

import ast
from pathlib import Path

import voicebot.text
from voicebot.text.abbreviations import ABBREVIATIONS, NO_SENTENCE_END, SCORED
from voicebot.text.scoring import for_scoring
from voicebot.text.split import split_sentences
from voicebot.text.spoken import normalize


def test_one_entry_cuts_speaks_and_scores_a_title():
    assert "dr" in NO_SENTENCE_END and ABBREVIATIONS["dr"].spoken == "doctor"
    assert split_sentences("Dr. Smith is in. Good.") == ["Dr. Smith is in.", "Good."]
    assert normalize("Dr. Smith") == "doctor Smith"
    assert for_scoring("Dr. Smith") == for_scoring("doctor smith") == "doctor smith"


def test_scoring_expands_only_unambiguous_words():
    assert SCORED["ms"] == "miss" and ABBREVIATIONS["ms"].spoken == "miz"
    assert for_scoring("etc.") == "etcetera"
    assert for_scoring("No, I said no.") == "no i said no"  # "No. 5" is for the voice
    assert normalize("No. 5") == "number five"


def test_latin_abbreviations_and_months_end_no_sentence():
    assert {"e.g", "i.e", "nov", "sept"} <= NO_SENTENCE_END
    assert "etc" not in NO_SENTENCE_END  # "and so on, etc." often ends one
    assert normalize("e.g. this") == "for example this"


def test_the_text_package_sits_at_the_bottom():
    """It imports nothing else from voicebot, so every layer may use it."""
    for path in Path(voicebot.text.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("voicebot") or name.startswith("voicebot.text"), \
                    f"{path.name} imports {name}"
