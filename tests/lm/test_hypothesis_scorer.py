"""The chat model as a scorer of recognition hypotheses (the real SmolLM2-135M, float32)."""

from __future__ import annotations

import pytest

QUESTION = [{"role": "assistant", "content": "Nice to meet you! What's your name?"}]


@pytest.fixture(scope="module")
def scorer():
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer

    return load_hypothesis_scorer(threads=1)


def test_batched_scores_equal_one_forward_per_hypothesis(scorer):
    """The shared-prefix cache, the shared first tokens and the padded batch change
    nothing: each score is the log-probability a plain forward gives."""
    import torch

    texts = ["My name is Anneliese.", "My name is and at least.", "My name", "Anneliese."]
    scores = scorer.score(texts, QUESTION)
    for text, score in zip(texts, scores, strict=True):
        prefix, ids = scorer.prefix_ids(QUESTION), scorer.text_ids(text)
        with torch.inference_mode():
            logits = scorer.model(input_ids=torch.tensor([prefix + ids])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        expected = sum(float(logp[len(prefix) - 1 + i, t]) for i, t in enumerate(ids))
        assert score.logprob == pytest.approx(expected, abs=1e-3)
        assert score.n_tokens == len(ids)


def test_the_question_makes_the_answer_likely(scorer):
    """After "What's your name?" a name beats the common words that sound like it; with
    no conversation it does not."""
    name, words = scorer.score(["Anneliese.", "And at least."], QUESTION)
    assert name.logprob > words.logprob + 3
    plain_name, plain_words = scorer.score(["Anneliese.", "And at least."])
    assert plain_name.logprob < plain_words.logprob


def test_the_conversation_is_computed_once(scorer):
    scorer.prepare(QUESTION)
    first = scorer.score(["Anneliese.", "Annalise."], QUESTION)
    assert scorer.prefix_reused
    again = scorer.score(["Anneliese.", "Annalise."], QUESTION)
    assert [s.logprob for s in again] == pytest.approx([s.logprob for s in first], abs=1e-4)
    scorer.score(["Anneliese."], "What's the weather like?")
    assert not scorer.prefix_reused
    assert scorer.score([]) == []
