"""The scoring graph on tiny random Llama-style models: the log-probabilities it gives for
a batch of rows over a cached prefix are transformers' own."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lm.tiny_models import tiny_random_model


class _Ids:
    """The two token facts the scorer reads from a tokenizer (the graph is what is tested
    here; the real tokenizer's side is in test_hypothesis_scorer.py)."""

    eos_token_id = 1

    def convert_tokens_to_ids(self, token):
        return 1


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_scoring_graph_of_a_tiny_random_model_matches_transformers(model_type, tmp_path):
    import torch

    from voicebot.lm.onnx_hypothesis_scorer import OnnxHypothesisScorer
    from voicebot.lm.onnx_scorer_export import export_scorer

    model = tiny_random_model(model_type, seed=1)
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "scorer"
    out.mkdir()
    export_scorer(tmp_path / "model", out)
    scorer = OnnxHypothesisScorer(out, _Ids(), threads=1)

    prefix = [5, 17, 99, 42, 8]
    rows = [[61, 5, 77, 23], [12, 40], [7, 7, 7]]  # right-padded to 4 in one batch
    past = scorer._cached_prefix(prefix)
    assert past["past_0_k"].shape == (1, 2, len(prefix) - 1, 16)
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), 1, np.int64)
    targets = np.zeros((len(rows), width), np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = [prefix[-1], *row[:-1]]
        targets[i, :len(row)] = row
    got, present = scorer._run(ids, past, targets)
    assert present["present_1_v"].shape == (len(rows), 2, len(prefix) - 1 + width, 16)
    for i, row in enumerate(rows):
        with torch.inference_mode():
            logits = model(torch.tensor([prefix + row])).logits[0]
        logp = torch.log_softmax(logits, -1).numpy()
        want = [logp[len(prefix) - 1 + j, t] for j, t in enumerate(row)]
        np.testing.assert_allclose(got[i, :len(row)], want, atol=0.05)
    # Scoring only the last positions (the prefix run scores one) gives those same values.
    tail, _ = scorer._run(ids[:1], past, targets[:1, -2:])
    np.testing.assert_allclose(tail[0], got[0, -2:], atol=1e-4)
