"""Coqui's espeak phonemizer, run in-process: the same ids as the espeak-ng program,
without a subprocess per text segment."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("TTS")

from voicebot.text.spoken import normalize
from voicebot.training.prompts import load_prompts
from voicebot.training.teacher_corpus import sentences

TRICKY = ["Hello, how are you today?", "Dr. Smith lives at 221B Baker Street; it's 3:45 p.m.",
          "Well... I don't know!", "Café, naïve, résumé.", "It costs $3.50, right?",
          "She said: \"no\" -- then left.", "Is it 1999 or 2024?"]


@pytest.fixture(scope="module")
def tokenizers():
    from TTS.tts.models import setup_model

    from voicebot.training.base_voice import BaseRecipe, base_config
    from voicebot.tts.coqui_checkpoint import setup_tacotron2

    config = base_config(BaseRecipe(minutes=1, max_steps=1))
    return setup_model(config).tokenizer, setup_tacotron2(config).tokenizer


def test_same_ids_as_the_espeak_program(tokenizers):
    program, in_process = tokenizers
    texts = [normalize(t) for t in sentences(60, seed=11) + load_prompts()[:40] + TRICKY]
    started = time.perf_counter()
    expected = [program.text_to_ids(t) for t in texts]
    program_s = time.perf_counter() - started
    started = time.perf_counter()
    got = [in_process.text_to_ids(t) for t in texts]
    in_process_s = time.perf_counter() - started
    assert got == expected
    assert in_process_s < program_s  # ~40x on an idle machine; only the order is asserted
