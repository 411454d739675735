"""The chat model as a scorer of recognition hypotheses (the real SmolLM2-135M): the
exported ONNX scoring graph the app uses, and the float32 torch copy it is checked
against."""

from __future__ import annotations

import subprocess
import sys

import pytest

QUESTION = [{"role": "assistant", "content": "Nice to meet you! What's your name?"}]
TEXTS = ["My name is Anneliese.", "My name is and at least.", "My name", "Anneliese."]


@pytest.fixture(scope="module")
def torch_scorer():
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer

    return load_hypothesis_scorer(threads=1, backend="torch")


@pytest.fixture(scope="module")
def onnx_scorer():
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer
    from voicebot.lm.onnx_hypothesis_scorer import OnnxHypothesisScorer

    scorer = load_hypothesis_scorer(threads=1)  # "auto" on a CPU machine
    assert isinstance(scorer, OnnxHypothesisScorer)
    return scorer


@pytest.fixture(scope="module", params=["onnx", "torch"])
def scorer(request):
    return request.getfixturevalue(f"{request.param}_scorer")


def test_batched_torch_scores_equal_one_forward_per_hypothesis(torch_scorer):
    """The shared-prefix cache, the shared first tokens and the padded batch change
    nothing: each score is the log-probability a plain forward gives."""
    import torch

    scores = torch_scorer.score(TEXTS, QUESTION)
    for text, score in zip(TEXTS, scores, strict=True):
        prefix, ids = torch_scorer.prefix_ids(QUESTION), torch_scorer.text_ids(text)
        with torch.inference_mode():
            logits = torch_scorer.model(input_ids=torch.tensor([prefix + ids])).logits[0]
        logp = torch.log_softmax(logits.float(), dim=-1)
        expected = sum(float(logp[len(prefix) - 1 + i, t]) for i, t in enumerate(ids))
        assert score.logprob == pytest.approx(expected, abs=1e-3)
        assert score.n_tokens == len(ids)


def test_an_onnx_row_never_depends_on_the_others(onnx_scorer):
    """Each hypothesis scores the same alone, in a batch, with or without shared first
    tokens: activations are quantised per row, never per batch."""
    together = onnx_scorer.score(TEXTS, QUESTION)
    for text, score in zip(TEXTS, together, strict=True):
        alone = onnx_scorer.score([text], QUESTION)[0]
        assert score.logprob == pytest.approx(alone.logprob, abs=2e-3)
        assert score.n_tokens == alone.n_tokens == len(onnx_scorer.text_ids(text))


def test_onnx_scores_agree_with_the_float_model(onnx_scorer, torch_scorer):
    """The 4-bit weights are the embedded model's own (it is Q4_1); what differs is the
    int8 rounding of some activations: within 0.15 nats a token of the float model, and
    the difference between two hypotheses, which is what ranking sees, within 0.6 nats."""
    cases = [(TEXTS, QUESTION),
             (["Anneliese.", "And at least."], None),
             (["for tickets.", "4 tickets.", "Four tickets."],
              [{"role": "assistant", "content": "How many tickets do you need?"}]),
             (["He was not an ill disposed young man.", "He was not an old-sposed young man."],
              None)]
    for texts, context in cases:
        fast = onnx_scorer.score(texts, context)
        exact = torch_scorer.score(texts, context)
        for f, e in zip(fast, exact, strict=True):
            assert f.n_tokens == e.n_tokens
            assert abs(f.logprob - e.logprob) <= 0.15 * e.n_tokens, (texts, context)
        for i in range(1, len(texts)):
            assert (fast[i].logprob - fast[0].logprob) == pytest.approx(
                exact[i].logprob - exact[0].logprob, abs=0.6), (texts, context)


def test_the_sentence_end_is_the_float_models_next_mark(onnx_scorer, torch_scorer):
    """P(".", "?" or "!" next) after the user's words, as a plain forward of the float
    model gives it (within the int8 activations' rounding), and far apart for a sentence
    and its unfinished start."""
    import torch

    tokenizer = torch_scorer.tokenizer
    marks = [tokenizer(m, add_special_tokens=False)["input_ids"][0] for m in ".?!"]
    ends = {}
    for text in ("What is the capital of France", "What is the capital", "My name is John",
                 "My name is", "Stop"):
        ids = torch_scorer.prefix_ids(None) + tokenizer(text, add_special_tokens=False)[
            "input_ids"]
        with torch.inference_mode():
            logits = torch_scorer.model(input_ids=torch.tensor([ids])).logits[0, -1]
        expected = float(torch.logsumexp(torch.log_softmax(logits.float(), -1)[marks], 0))
        ends[text] = onnx_scorer.sentence_end_logprob(text)
        assert ends[text] == pytest.approx(expected, abs=0.3), text
    assert ends["What is the capital of France"] > ends["What is the capital"] + 5
    assert ends["My name is John"] > ends["My name is"] + 5


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


def test_the_onnx_scorer_needs_no_torch(onnx_scorer):
    """The conversation process runs without torch and transformers (~700 MB): loading
    and using the default scorer must not import them."""
    code = ("import sys\n"
            "from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer\n"
            "scores = load_hypothesis_scorer(threads=1).score(['Anneliese.', 'Annalise.'])\n"
            "assert len(scores) == 2\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
