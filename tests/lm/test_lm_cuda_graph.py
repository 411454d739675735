"""The CUDA-graph decoder's static-cache bookkeeping, run eagerly on the CPU.

The graph capture itself needs a GPU; what it replays is the eager step tested here
(static cache, explicit positions, a reused prefix with stale slots after it), and at
load time ``graphed_decoder`` compares its replay with plain decoding on the GPU.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    from voicebot.lm.loading import model_folder

    folder, _ = model_folder("smollm2-135m-instruct")
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def test_a_reused_prefix_with_stale_slots_after_it_decodes_like_a_fresh_cache(model):
    from voicebot.lm.cuda_graph import GraphedDecoder, _eager_reference

    longer = list(range(200, 260))  # an earlier turn, 60 tokens
    shared = longer[:20]
    prompt = [*shared, 5, 6, 7]  # this turn: 20 tokens reused, slots 23..59 stale
    steps = [9, 10, 11]
    with torch.inference_mode():
        decoder = GraphedDecoder(model, capacity=128)
        decoder.forward(longer, 0)
        got = [decoder.forward(prompt[len(shared):], len(shared))]
        got += [decoder.forward([t], len(prompt) + i) for i, t in enumerate(steps)]
        reference = _eager_reference(model, prompt, steps)
    for ours, plain in zip(got, reference, strict=True):
        assert np.abs(ours - plain).max() < 1e-3
        assert ours.argmax() == plain.argmax()


def test_a_conversation_longer_than_the_cache_is_refused_with_a_clear_message(model):
    from voicebot.lm.cuda_graph import GraphedDecoder

    with torch.inference_mode():
        decoder = GraphedDecoder(model, capacity=16)
        with pytest.raises(ValueError, match="holds 16"):
            decoder.forward(list(range(100, 120)), 0)


def test_without_a_gpu_the_capture_is_declined_and_decoding_stays_eager(model, caplog):
    from voicebot.lm.cuda_graph import graphed_decoder

    if torch.cuda.is_available():
        pytest.skip("this checks the fallback on a machine without CUDA")
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        assert graphed_decoder(model, capacity=64) is None
    assert "decodes eagerly" in caplog.text
