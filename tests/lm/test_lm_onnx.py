"""The CPU fast path: weight quantisation and the exported decoder against transformers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.lm.tiny_models import tiny_random_model
from voicebot.lm.onnx_quantize import (
    BLOCK,
    approximate_four_bit,
    eight_bit,
    four_bit_grid,
    quantize_matmuls,
)


def q4_1_like(k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Weights as a Q4_1 GGUF de-quantises them: d * q + m per block of 32."""
    q = rng.integers(0, 16, size=(n, k // BLOCK, BLOCK))
    d = rng.uniform(0.001, 0.02, size=(n, k // BLOCK, 1))
    m = rng.uniform(-0.2, 0.0, size=(n, k // BLOCK, 1))
    return (q * d + m).astype(np.float32).reshape(n, k).T.copy()


def test_four_bit_grid_is_found_exactly_and_only_where_it_exists():
    rng = np.random.default_rng(0)
    weight = q4_1_like(64, 8, rng)
    weight[:32, 0] = 0.5  # a constant block is a (trivial) grid too
    q, step, offset = four_bit_grid(weight)
    rebuilt = (offset[..., None] + q * step[..., None]).reshape(8, 64).T
    np.testing.assert_allclose(rebuilt, weight, atol=1e-6)
    assert four_bit_grid(rng.standard_normal((64, 8)).astype(np.float32)) is None


def test_eight_bit_round_trip_is_close():
    weight = np.random.default_rng(1).standard_normal((64, 8)).astype(np.float32)
    q, scale, zero = eight_bit(weight)
    rebuilt = ((q.astype(np.float32) - zero[..., None]) * scale[..., None]).reshape(8, 64).T
    assert np.abs(rebuilt - weight).max() <= scale.max() * 0.51


@pytest.mark.parametrize("kind", ["grid", "float"])
def test_quantised_matmul_matches_numpy_on_onnxruntime(kind):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    k, n = 96, 40
    weight = q4_1_like(k, n, rng) if kind == "grid" else rng.standard_normal((k, n))
    weight = weight.astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    counts = quantize_matmuls(model)
    assert counts == ({"4bit": 1, "8bit": 0} if kind == "grid" else {"4bit": 0, "8bit": 1})
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    x = rng.standard_normal((1, 3, k)).astype(np.float32)
    got = session.run(None, {"x": x})[0]
    want = x @ weight
    # Activations are rounded to int8 per block (accuracy_level 4): ~1% of the scale.
    assert np.abs(got - want).max() < 0.02 * np.abs(want).max()


def test_exported_decoder_agrees_with_transformers(chat_model):
    import torch
    from transformers import AutoModelForCausalLM

    from voicebot.lm.onnx_backend import OnnxBackend

    backend = chat_model.backend
    if not isinstance(backend, OnnxBackend):
        pytest.skip("the chat model does not run on the ONNX backend here")
    from voicebot.lm.loading import model_folder

    folder, _ = model_folder("smollm2-135m-instruct")
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    text = ("The Eiffel Tower was built for the 1889 World's Fair in Paris. It is made of "
            "iron, and millions of people visit it every year.")
    ids = chat_model.tokenizer.encode(text, add_special_tokens=False)
    with torch.inference_mode():
        want = reference(torch.tensor([ids])).logits[0].numpy()
    backend.reset()
    agree, divergence = 0, 0.0
    got = backend.start(ids[:1])
    for i in range(len(ids) - 1):
        agree += int(got.argmax() == want[i].argmax())
        divergence += kl_divergence(want[i], got)
        got = backend.step(ids[i + 1])
    steps = len(ids) - 1
    # Measured: ~92% agreement and KL ~0.02 (float model vs 4/8-bit weights).
    assert agree / steps >= 0.8
    assert divergence / steps < 0.1
    # Prefilling all tokens at once (a different kernel path) is just as close.
    backend.reset()
    at_once = backend.start(ids)
    assert kl_divergence(want[-1], at_once) < 0.1


def kl_divergence(reference: np.ndarray, other: np.ndarray) -> float:
    p = np.exp(reference - reference.max())
    p /= p.sum()
    log_q = other - other.max() - np.log(np.exp(other - other.max()).sum())
    return float((p * (np.log(p + 1e-12) - log_q)).sum())


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_decoder_of_a_tiny_random_model_matches_transformers(model_type, tmp_path,
                                                               monkeypatch):
    """The graph builder for other Llama-style models (Qwen2 has q/k/v biases), through
    the backend's in-place cache, prefix reuse and chunked prefill."""
    import torch

    from voicebot.lm import backend as backend_module
    from voicebot.lm.onnx_backend import OnnxBackend
    from voicebot.lm.onnx_export import export_decoder

    model = tiny_random_model(model_type, seed=0)
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "onnx"
    out.mkdir()
    export_decoder(tmp_path / "model", out)
    ids = [3, 17, 99, 42, 8, 61, 5, 77, 23, 12]
    with torch.inference_mode():
        want = model(torch.tensor([ids])).logits[0].numpy()

    backend = OnnxBackend(out, threads=1, capacity=64)
    scale = np.abs(want).max()
    got = backend.start(ids[:4])
    np.testing.assert_allclose(got, want[3], atol=0.03 * scale)
    for i in range(4, len(ids)):
        got = backend.step(ids[i])
        np.testing.assert_allclose(got, want[i], atol=0.03 * scale)
    # A new prompt sharing the first 6 tokens: those are kept, the rest recomputed.
    other = [*ids[:6], 50, 51, 52]
    with torch.inference_mode():
        want_other = model(torch.tensor([other])).logits[0, -1].numpy()
    np.testing.assert_allclose(backend.start(other), want_other, atol=0.03 * scale)
    assert backend.reused_tokens == 6
    # Prefill in chunks (as long prompts are) gives the same result.
    backend.reset()
    monkeypatch.setattr(backend_module, "PREFILL_CHUNK", 4)
    np.testing.assert_allclose(backend.start(other), want_other, atol=0.03 * scale)
    # Decode steps after a chunked prefill bind the one-token inputs again.
    with torch.inference_mode():
        want_next = model(torch.tensor([[*other, 9]])).logits[0, -1].numpy()
    np.testing.assert_allclose(backend.step(9), want_next, atol=0.03 * scale)
    with pytest.raises(ValueError, match="cache holds"):
        backend.start(list(range(100)))


def test_approximate_four_bit_round_trip_is_within_half_a_step():
    weight = np.random.default_rng(3).standard_normal((64, 8)).astype(np.float32)
    q, scale = approximate_four_bit(weight)
    rebuilt = ((q.astype(np.float32) - 8) * scale[..., None]).reshape(8, 64).T
    assert np.all(np.abs(rebuilt - weight) <= scale.repeat(BLOCK, -1).T * 0.5 + 1e-6)


def test_big_output_head_gives_exact_top_logits(tmp_path):
    """A large vocabulary takes the two-pass head: 4-bit logits, the best HEAD_EXACT_TOP
    recomputed from the (tied) float embeddings."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from voicebot.lm.onnx_backend import OnnxBackend
    from voicebot.lm.onnx_export import HEAD_EXACT_TOP, export_decoder

    config = AutoConfig.for_model(
        "llama", vocab_size=16 * HEAD_EXACT_TOP, hidden_size=64, intermediate_size=128,
        num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=64, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(tmp_path / "model")
    (tmp_path / "onnx").mkdir()
    export_decoder(tmp_path / "model", tmp_path / "onnx")
    ids = [3, 17, 99, 42, 8]
    with torch.inference_mode():
        want = model(torch.tensor([ids])).logits[0, -1].numpy()
    got = OnnxBackend(tmp_path / "onnx", threads=1, capacity=16).start(ids)
    scale = np.abs(want).max()
    best = np.argsort(-want)[:10]
    assert got.argmax() == want.argmax()
    np.testing.assert_allclose(got[best], want[best], atol=0.03 * scale)
    # The rest is 4-bit, and 8-bit layers round too: close, not exact.
    assert np.abs(got - want).max() < 0.3 * scale
