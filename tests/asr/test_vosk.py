"""Vosk with the real Korean model on Korean speech synthesised by espeak-ng.

The Korean model decodes at roughly real time on this 2-core machine, so the audio is
decoded as few times as possible (one module-scoped run shared by several tests).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from voicebot.asr.recognizer import Recognizer
from voicebot.asr.vosk_engine import VoskRecognizer

from .conftest import silence

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _run(model, audio, chunk, nbest=5):
    partials = []
    recognizer = VoskRecognizer(model, nbest=nbest, on_partial=partials.append)
    for i in range(0, len(audio), chunk):
        recognizer.feed(audio[i:i + chunk])
    return partials, recognizer.finish()


@pytest.fixture(scope="module")
def two_sentences(vosk_model, korean_speech):
    """The sentence twice with a 2 s pause (Vosk closes a segment there), 20 ms chunks."""
    audio = np.concatenate([korean_speech, silence(2.0), korean_speech])
    partials, hyps = _run(vosk_model, audio, 320)
    return audio, partials, hyps


def test_streams_partials_and_returns_nbest_with_word_timings(vosk_model, two_sentences):
    assert isinstance(VoskRecognizer(vosk_model), Recognizer)
    audio, partials, hyps = two_sentences
    assert any(HANGUL.search(p.tentative) for p in partials), "Korean partials while feeding"
    assert any(p.committed for p in partials), "the first sentence was closed by an endpoint"
    assert 2 <= len(hyps) <= 5
    duration = len(audio) / 16000
    for rank, h in enumerate(hyps):
        assert HANGUL.search(h.text) and h.engine_rank == rank
        assert h.words and [w.word for w in h.words] == h.text.split()
        starts = [w.start for w in h.words]
        assert starts == sorted(starts)
        assert all(0 <= w.start <= w.end <= duration + 0.1 for w in h.words)
    # Alternatives share the closed first sentence and differ in the second.
    assert len({h.text for h in hyps}) == len(hyps)
    assert hyps[0].words[-1].end > duration / 2 + 1.0  # times count from the first sample
    scores = [h.acoustic_score for h in hyps]
    assert scores == sorted(scores, reverse=True)


def test_single_best_has_word_confidences(vosk_model, korean_speech):
    _, hyps = _run(vosk_model, korean_speech, 16000, nbest=1)
    assert len(hyps) == 1 and HANGUL.search(hyps[0].text)
    assert all(0 < w.confidence <= 1 for w in hyps[0].words)


def test_no_speech_gives_an_empty_nbest(vosk_model):
    assert _run(vosk_model, silence(1.0), 320)[1] == []
    assert VoskRecognizer(vosk_model).finish() == []
    recognizer = VoskRecognizer(vosk_model)
    recognizer.feed(np.full(1600, np.nan, dtype=np.float32))  # sanitised to silence
    assert recognizer.finish() == []
