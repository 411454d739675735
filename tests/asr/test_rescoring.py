"""Rescoring: the arithmetic, a constructed confusion the LM must fix, and real n-bests."""

from __future__ import annotations

import pytest

from voicebot.asr.recognizer import Hypothesis
from voicebot.asr.rescoring import (
    TUNED_WEIGHTS,
    TuningItem,
    Weights,
    merge_variants,
    rescore,
    total_score,
    tune_weights,
)
from voicebot.asr.wer import ErrorCounts, count_errors
from voicebot.asr.whisper_engine import WhisperRecognizer
from voicebot.settings import AsrSettings


def test_total_is_the_weighted_sum():
    assert total_score(-3.0, -20.0, 3, Weights(1.0, 0.5, 2.0)) == pytest.approx(-7.0)
    assert Weights.from_settings(AsrSettings(acoustic_weight=0.5, lm_weight=0.2,
                                             word_bonus=1.0, neural_weight=0.3)) \
        == Weights(0.5, 0.2, 1.0, 0.3)


def test_spelling_variants_merge_into_one_hypothesis():
    merged = merge_variants([Hypothesis("Ten of clubs.", -2.5), Hypothesis("10 of clubs", -2.0),
                             Hypothesis("ten of close", -2.9)])
    assert [h.text for h in merged] == ["10 of clubs", "ten of close"]
    assert merged[0].extras["variants"] == 2


def test_lm_fixes_an_acoustic_confusion(ngram_lm):
    """The acoustic model slightly prefers 'close'; English says 'clubs'."""
    nbest = [Hypothesis("four of close", acoustic_score=-3.0),
             Hypothesis("four of clubs", acoustic_score=-3.15)]
    reference = "four of clubs"
    weights = TUNED_WEIGHTS
    result = rescore(nbest, ngram_lm, weights)
    assert count_errors(reference, nbest[0].text).errors == 1
    assert result.text == "four of clubs"
    assert count_errors(reference, result.text).errors == 0
    # Every hypothesis carries all its scores for the UI, best first.
    for h in result.hypotheses:
        assert h.lm_score is not None and h.total_score is not None
    assert result.hypotheses[0].total_score >= result.hypotheses[1].total_score
    # Without an LM the acoustic choice stands.
    assert rescore(nbest, None, weights).text == "four of close"


def test_rescoring_never_worse_than_first_best_on_real_speech(whisper_model, clips, ngram_lm):
    recognizer = WhisperRecognizer(whisper_model, nbest=5, streaming=False)
    weights = TUNED_WEIGHTS
    first, rescored = ErrorCounts(), ErrorCounts()
    items = []
    for utterance, audio in clips:
        recognizer.feed(audio)
        nbest = recognizer.finish(5)
        assert 1 <= len(nbest) <= 5
        first.add(count_errors(utterance.reference, nbest[0].text))
        result = rescore(nbest, ngram_lm, weights)
        rescored.add(count_errors(utterance.reference, result.text))
        items.append(TuningItem(utterance.reference, result.hypotheses))
    assert rescored.wer <= first.wer
    # The tuned weights are among the best on the dev split (every second utterance).
    dev = items[1::2]
    _, best_dev_wer = tune_weights(dev, [0, 0.05, 0.1, 0.2, 0.3, 0.5], [0, 0.5, 1])
    _, tuned_dev_wer = tune_weights(dev, [weights.lm], [weights.word_bonus])
    assert tuned_dev_wer == best_dev_wer
