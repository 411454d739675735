"""Export a Llama-style transformers model to a small, fast ONNX decoder (GUI-free).

Why: a 135M-parameter model spends most of its CPU time in per-operation overhead, not
arithmetic. transformers' eager forward runs ~1700 small operations per token; ONNX
Runtime runs a graph of the same model with far fewer, fused operations and with 4- or
8-bit weights (``onnx_quantize``), which read a fraction of the memory per token.

The exported graph is written here rather than taken from transformers' export because
its shape is what makes it fast:
- q, k and v come from one fused matrix multiply, gate and up from another;
- grouped-query attention reshapes the queries to the key/value heads instead of
  repeating the cache (no copy of the cache per layer and token);
- keys are cached transposed ([1, kv_heads, head_dim, length]) so attention needs no
  transpose; shapes use -1 so no shape arithmetic runs per layer;
- only the last position's logits are computed (the prompt's other 49k-wide rows are waste).

Supported: model types in SUPPORTED_MODEL_TYPES with default rotary embeddings and SiLU
MLPs (SmolLM2, Llama 2 style, Qwen2/2.5 with their q/k/v biases). Anything else runs on
the torch backend.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
# Bump when the graph or the quantisation changes: cached exports are then rebuilt.
EXPORT_VERSION = "2"
MODEL_FILE = "model.onnx"
LAYOUT_FILE = "decoder.json"


def unsupported_reason(config: Any) -> str | None:
    """Why this transformers config cannot be exported, or None when it can."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(SUPPORTED_MODEL_TYPES)}"
    rope = _rope_parameters(config)
    if rope.get("rope_type", "default") != "default":
        return f"rotary scaling {rope.get('rope_type')!r} is not supported"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not supported"
    if getattr(config, "use_sliding_window", False):
        return "sliding-window attention is not supported"
    if getattr(config, "mlp_bias", False):
        return "MLP biases are not supported"
    return None


def _rope_parameters(config: Any) -> dict[str, Any]:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    params = dict(params or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params


def layout(config: Any) -> dict[str, Any]:
    heads = config.num_attention_heads
    return {
        "layers": config.num_hidden_layers,
        "heads": heads,
        "kv_heads": getattr(config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
        "vocab_size": config.vocab_size,
        "export_version": EXPORT_VERSION,
    }


def past_names(layers: int) -> list[str]:
    return [f"past_{i}_{kind}" for i in range(layers) for kind in ("k", "v")]


def present_names(layers: int) -> list[str]:
    return [f"present_{i}_{kind}" for i in range(layers) for kind in ("k", "v")]


def _build_decoder(model: Any) -> Any:
    """An nn.Module computing (last logits, *present k/v) from (input_ids, *past k/v)."""
    import torch
    from torch import nn

    config = model.config
    shape = layout(config)
    heads, kv_heads, head_dim = shape["heads"], shape["kv_heads"], shape["head_dim"]
    group = heads // kv_heads
    eps = config.rms_norm_eps

    def fuse(*linears: nn.Linear) -> nn.Linear:
        weight = torch.cat([lin.weight for lin in linears])
        has_bias = any(lin.bias is not None for lin in linears)
        fused = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
        fused.weight.data = weight.detach().clone()
        if has_bias:
            fused.bias.data = torch.cat([
                lin.bias if lin.bias is not None else torch.zeros(lin.out_features)
                for lin in linears]).detach().clone()
        return fused

    def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    class Layer(nn.Module):
        def __init__(self, layer: Any):
            super().__init__()
            attn, mlp = layer.self_attn, layer.mlp
            self.qkv = fuse(attn.q_proj, attn.k_proj, attn.v_proj)
            self.out = attn.o_proj
            self.gate_up = fuse(mlp.gate_proj, mlp.up_proj)
            self.down = mlp.down_proj
            self.norm_in = layer.input_layernorm.weight
            self.norm_mid = layer.post_attention_layernorm.weight

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            inner = model.model
            self.embed = inner.embed_tokens
            self.layers = nn.ModuleList([Layer(layer) for layer in inner.layers])
            self.norm = inner.norm.weight
            self.lm_head = model.lm_head
            theta = float(_rope_parameters(config)["rope_theta"])
            inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
            self.register_buffer("inv_freq", inv_freq, persistent=False)
            # x @ rotate == cat(-x2, x1): one small matmul instead of slice/neg/concat.
            half = head_dim // 2
            rotate = torch.zeros(head_dim, head_dim)
            rotate[torch.arange(half) + half, torch.arange(half)] = -1.0
            rotate[torch.arange(half), torch.arange(half) + half] = 1.0
            self.register_buffer("rotate", rotate, persistent=False)

        def forward(self, input_ids: torch.Tensor, *past: torch.Tensor):
            new = input_ids.shape[1]
            cached = past[1].shape[2]
            positions = torch.arange(new, dtype=torch.float32) + cached
            angles = positions[:, None] * self.inv_freq[None, :]
            angles = torch.cat([angles, angles], -1)[:, None, :]
            cos, sin = angles.cos(), angles.sin()
            scale = 1.0 / math.sqrt(head_dim)  # folded into the query rotation
            cos_q, sin_q = cos * scale, sin * scale
            rows = torch.arange(new)[:, None] + cached
            cols = torch.arange(new + cached)[None, :]
            # Rows are (query head in group, position): the causal mask repeats per head.
            mask = torch.where(cols <= rows, 0.0, float("-inf")).repeat(group, 1)

            x = self.embed(input_ids)
            presents = []
            for i, layer in enumerate(self.layers):
                h = rms_norm(x, layer.norm_in)
                q, k, v = layer.qkv(h).split(
                    [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], -1)
                q = q.reshape(1, -1, heads, head_dim)
                k = k.reshape(1, -1, kv_heads, head_dim)
                v = v.reshape(1, -1, kv_heads, head_dim)
                q = q * cos_q + (q @ self.rotate) * sin_q
                k = k * cos + (k @ self.rotate) * sin
                q = q.reshape(1, -1, kv_heads, group, head_dim).permute(0, 2, 3, 1, 4)
                q = q.reshape(1, kv_heads, -1, head_dim)
                keys = torch.cat([past[2 * i], k.permute(0, 2, 3, 1)], 3)
                values = torch.cat([past[2 * i + 1], v.transpose(1, 2)], 2)
                presents += [keys, values]
                weights = (q @ keys + mask).softmax(-1)
                attended = (weights @ values).reshape(1, kv_heads, group, -1, head_dim)
                attended = attended.permute(0, 3, 1, 2, 4).reshape(1, -1, heads * head_dim)
                x = x + layer.out(attended)
                h = rms_norm(x, layer.norm_mid)
                gate, up = layer.gate_up(h).chunk(2, -1)
                x = x + layer.down(torch.nn.functional.silu(gate) * up)
            x = rms_norm(x[:, -1:], self.norm)
            return (self.lm_head(x)[:, 0], *presents)

    return Decoder().eval()


def empty_past(shape: dict[str, Any], length: int = 0) -> list[Any]:
    """Zero-length (or ``length``) key/value arrays in the decoder's layout (numpy)."""
    import numpy as np

    kv, dim = shape["kv_heads"], shape["head_dim"]
    arrays = []
    for _ in range(shape["layers"]):
        arrays.append(np.zeros((1, kv, dim, length), np.float32))  # keys, transposed
        arrays.append(np.zeros((1, kv, length, dim), np.float32))
    return arrays


def export_decoder(model_dir: Path, out_dir: Path) -> None:
    """Write ``model.onnx`` (+ external weights) and ``decoder.json`` into ``out_dir``."""
    import onnx
    import torch
    from transformers import AutoModelForCausalLM

    from voicebot.lm.onnx_quantize import quantize_matmuls

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    reason = unsupported_reason(model.config)
    if reason:
        raise ValueError(f"cannot export {model_dir} to ONNX: {reason}")
    shape = layout(model.config)
    decoder = _build_decoder(model)
    layers = shape["layers"]
    dims_in = {"input_ids": {1: "new"}}
    dims_out: dict[str, dict[int, str]] = {}
    for name in past_names(layers):
        dims_in[name] = {3 if name.endswith("k") else 2: "cached"}
    for name in present_names(layers):
        dims_out[name] = {3 if name.endswith("k") else 2: "total"}
    example_ids = torch.tensor([[1, 2, 3, 4, 5]])
    example_past = [torch.from_numpy(a) for a in empty_past(shape, length=3)]

    float_dir = out_dir / "float"
    float_dir.mkdir()
    float_file = float_dir / MODEL_FILE
    with torch.inference_mode():
        torch.onnx.export(decoder, (example_ids, *example_past), str(float_file),
                          input_names=["input_ids", *past_names(layers)],
                          output_names=["logits", *present_names(layers)],
                          dynamic_axes={**dims_in, **dims_out}, opset_version=17,
                          dynamo=False)
    del decoder, model

    graph = onnx.load(str(float_file))
    shape["weights"] = quantize_matmuls(graph)
    onnx.save_model(graph, str(out_dir / MODEL_FILE),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location=MODEL_FILE + ".data", size_threshold=1024)
    # onnx writes the weights file private (0600); a models folder may be shared.
    (out_dir / (MODEL_FILE + ".data")).chmod(0o644)
    shutil.rmtree(float_dir)
    (out_dir / LAYOUT_FILE).write_text(json.dumps(shape, indent=2), "utf-8")
    log.info("exported %s to ONNX in %s", model_dir, out_dir)
