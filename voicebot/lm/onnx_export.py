"""Build a small, fast ONNX decoder from a Llama-style transformers model (GUI-free).

Why: a 135M-parameter model spends most of its CPU time in per-operation overhead, not
arithmetic. transformers' eager forward runs ~1700 small operations per token. The graph
built here runs ~800, most of them ONNX Runtime's fused kernels, with 4- or 8-bit weights
(``onnx_quantize``) that read a fraction of the memory per token.

The graph is written node by node with onnx.helper (no torch exporter), because its
shape is what makes it fast:
- per layer: RMSNorm, one quantized matmul for q/k/v, ``GroupQueryAttention`` (rotary
  embedding, grouped-query attention and the key/value cache in one kernel), the output
  projection, ``SkipSimplifiedLayerNormalization`` (residual add + RMSNorm), one
  quantized matmul for gate/up, SiLU (``QuickGelu`` with alpha 1), down projection;
- the key/value cache is one preallocated buffer per layer that ONNX Runtime appends to
  in place (the backend binds each past input and present output to the same memory),
  so a token costs the same whether the conversation is 100 or 2000 tokens long, minus
  attention itself; measured 14 vs 16 ms per token at 100 cached tokens and 20 vs 24 ms
  at 1000 against a concatenating cache;
- only the last position's logits are computed (the prompt's other 49k-wide rows are
  waste), and a big output head runs at 4 bits, then recomputes its best 64 logits
  exactly (``GraphBuilder.output_head``).

Inputs: ``input_ids`` [1, T] int64, ``position_ids`` [1, T] int64, ``seqlens_k`` [1]
int32 (tokens in the cache after this call, minus one), ``total_len`` int32 scalar, and
``past_<i>_k`` / ``past_<i>_v`` [1, kv_heads, capacity, head_dim] float32. Outputs:
``logits`` [1, vocab] and ``present_<i>_k`` / ``present_<i>_v``.

Supported: model types in SUPPORTED_MODEL_TYPES with default rotary embeddings and SiLU
MLPs (SmolLM2, Llama 2 style, Qwen2/2.5 with their q/k/v biases). Anything else runs on
the torch backend.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.lm.onnx_quantize import (
    FLOAT_ACTIVATIONS,
    INT8_ACTIVATIONS,
    approximate_matmul,
    four_bit_grid,
    quantized_matmul,
)

log = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")
# Bump when the graph or the quantisation changes: cached exports are then rebuilt.
EXPORT_VERSION = "5"
# Logits the output head recomputes exactly after its approximate pass (see output_head).
HEAD_EXACT_TOP = 64
MODEL_FILE = "model.onnx"
LAYOUT_FILE = "decoder.json"
# Rotary tables cover this many positions at most (the context is capped to it).
MAX_POSITIONS = 32768


def unsupported_reason(config: Any) -> str | None:
    """Why this transformers config cannot be exported, or None when it can."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(SUPPORTED_MODEL_TYPES)}"
    rope = rope_parameters(config)
    if rope.get("rope_type", "default") != "default":
        return f"rotary scaling {rope.get('rope_type')!r} is not supported"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not supported"
    if getattr(config, "use_sliding_window", False):
        return "sliding-window attention is not supported"
    if getattr(config, "mlp_bias", False):
        return "MLP biases are not supported"
    return None


def rope_parameters(config: Any) -> dict[str, Any]:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    params = dict(params or {})
    # A config.json read as plain JSON (loading.read_config) may still say "type", the
    # key transformers renames to "rope_type" when it loads an older config.
    if "type" in params:
        params.setdefault("rope_type", params["type"])
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
        "max_positions": min(int(getattr(config, "max_position_embeddings", 0) or 0)
                             or MAX_POSITIONS, MAX_POSITIONS),
        "export_version": EXPORT_VERSION,
    }


def past_names(layers: int) -> list[str]:
    return [f"past_{i}_{kind}" for i in range(layers) for kind in ("k", "v")]


def present_names(layers: int) -> list[str]:
    return [f"present_{i}_{kind}" for i in range(layers) for kind in ("k", "v")]


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.weight_bits = {"4bit": 0, "8bit": 0}

    def constant(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "",
             **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, domain=domain,
                                           name=f"{outputs[0]}_{op}", **attributes))
        return outputs[0]

    def half_table(self, name: str, table: np.ndarray) -> str:
        """A [rows, width] float table stored in float16: half the memory of float32, and
        the embedded model's Q8_0 values (8-bit steps times a float16 scale) move by
        < 0.05% of their size."""
        return self.constant(name, table.astype(np.float16))

    def gather_rows(self, table: str, ids: str, out: str) -> str:
        """The ``ids`` rows of a ``half_table`` as float32."""
        rows = self.node("Gather", [table, ids], [f"{out}_f16"], axis=0)
        return self.node("Cast", [rows], [out], to=1)  # 1: TensorProto.FLOAT

    def linear(self, x: str, out: str, *linears: Any,
               accuracy: int = INT8_ACTIVATIONS) -> str:
        """``x @ W.T (+ b)`` for the torch Linear layers' weights stacked along outputs."""
        import torch

        weight = torch.cat([lin.weight for lin in linears]).detach().float().numpy().T
        has_bias = any(lin.bias is not None for lin in linears)
        product = f"{out}_nobias" if has_bias else out
        nodes, inits, bits = quantized_matmul(x, product, np.ascontiguousarray(weight), out,
                                              accuracy)
        self.nodes += nodes
        self.initializers += inits
        self.weight_bits[f"{bits}bit"] += 1
        if has_bias:
            bias = torch.cat([lin.bias if lin.bias is not None else torch.zeros(lin.out_features)
                              for lin in linears]).detach().float().numpy()
            self.node("Add", [product, self.constant(f"{out}_bias", bias)], [out])
        return out


    def output_head(self, x: str, head: Any, tied_to: str | None) -> str:
        """``logits`` [1, vocab] for the last position ``x`` [1, 1, hidden].

        A head with a bias, on a 4-bit grid or for a small vocabulary runs like the other
        layers. Otherwise (the embedded model's tied Q8_0 embeddings) it would be the
        biggest matmul per token, ~3 of ~15 ms at 8 bits, so it runs in two passes: all
        logits with approximate 4-bit weights (half the time), then the HEAD_EXACT_TOP
        best of those recomputed from the float16 weights and put in their place (~0.1 ms).
        On the embedded model the true top 20 were within the approximate top 73 at
        worst, so greedy and nucleus choices see exact values (closer to the float model
        than the 8-bit head was); only the tail keeps 4-bit ones: mean KL divergence from
        the float model 0.016, as with the 8-bit head (0.075 with no exact pass).
        """

        weight = np.ascontiguousarray(head.weight.detach().float().numpy().T)
        shape_2d = self.constant("logits_shape", np.array([1, -1], np.int64))
        if (head.bias is not None or weight.shape[1] < 16 * HEAD_EXACT_TOP
                or four_bit_grid(weight) is not None):
            logits = self.linear(x, "lm_logits", head)
            return self.node("Reshape", [logits, shape_2d], ["logits"])
        nodes, inits = approximate_matmul(x, "lm_approx", weight, "lm_approx")
        self.nodes += nodes
        self.initializers += inits
        self.weight_bits["4bit"] += 1
        rows = tied_to or self.half_table("lm_head_f16", weight.T)
        approx = self.node("Reshape", ["lm_approx", shape_2d], ["lm_approx_2d"])
        self.node("TopK", [approx, self.constant("lm_top", np.array([HEAD_EXACT_TOP], np.int64))],
                  ["lm_top_values", "lm_top_ids"], axis=-1)
        chosen = self.gather_rows(rows, "lm_top_ids", "lm_top_rows")
        column = self.node("Reshape", [x, self.constant(
            "lm_column_shape", np.array([-1, 1], np.int64))], ["lm_column"])
        exact = self.node("MatMul", [chosen, column], ["lm_top_exact"])
        exact = self.node("Reshape", [exact, shape_2d], ["lm_top_exact_2d"])
        return self.node("ScatterElements", [approx, "lm_top_ids", exact], ["logits"],
                         axis=1)


def rotary_tables(g: GraphBuilder, config: Any, positions: int, head_dim: int) -> None:
    """The ``cos_cache`` / ``sin_cache`` constants [positions, head_dim / 2] that ONNX
    Runtime's rotary kernels read (default rotary embedding, non-interleaved)."""
    theta = float(rope_parameters(config)["rope_theta"])
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    g.constant("cos_cache", np.cos(angles).astype(np.float32))
    g.constant("sin_cache", np.sin(angles).astype(np.float32))


def tied(head: Any, embedding: Any) -> bool:
    return head.weight is embedding.weight or (
        head.weight.shape == embedding.weight.shape
        and head.weight.data_ptr() == embedding.weight.data_ptr())


def decoder_layers(g: GraphBuilder, model: Any, x: str,
                   attention: Callable[[int, str], str],
                   float_activations: tuple[str, ...] = ()) -> str:
    """Every transformer layer of ``model`` on the hidden states ``x``: RMSNorm, the fused
    q/k/v projection, ``attention(i, qkv)`` (the graph's own kind), the output projection,
    residual add + RMSNorm, the SiLU MLP and its residual. ``float_activations``: the
    projections ("qkv", "out", "gate_up", "down") computed from float32 activations."""
    eps = float(model.config.rms_norm_eps)

    def weight(tensor: Any) -> np.ndarray:
        return tensor.detach().float().numpy()

    def accuracy(name: str) -> int:
        return FLOAT_ACTIVATIONS if name in float_activations else INT8_ACTIVATIONS

    for i, layer in enumerate(model.model.layers):
        attn, mlp = layer.self_attn, layer.mlp
        h = g.node("SimplifiedLayerNormalization",
                   [x, g.constant(f"l{i}_norm_in", weight(layer.input_layernorm.weight))],
                   [f"l{i}_h"], axis=-1, epsilon=eps)
        qkv = g.linear(h, f"l{i}_qkv", attn.q_proj, attn.k_proj, attn.v_proj,
                       accuracy=accuracy("qkv"))
        out = g.linear(attention(i, qkv), f"l{i}_out", attn.o_proj, accuracy=accuracy("out"))
        h2 = g.node("SkipSimplifiedLayerNormalization",
                    [x, out, g.constant(f"l{i}_norm_mid",
                                        weight(layer.post_attention_layernorm.weight))],
                    [f"l{i}_h2", "", "", f"l{i}_residual"], domain="com.microsoft",
                    epsilon=eps)
        x = f"l{i}_residual"
        gate_up = g.linear(h2, f"l{i}_gate_up", mlp.gate_proj, mlp.up_proj,
                           accuracy=accuracy("gate_up"))
        split = g.constant(f"l{i}_split", np.array([mlp.gate_proj.out_features] * 2, np.int64))
        g.node("Split", [gate_up, split], [f"l{i}_gate", f"l{i}_up"], axis=-1)
        act = g.node("QuickGelu", [f"l{i}_gate"], [f"l{i}_act"], domain="com.microsoft",
                     alpha=1.0)
        product = g.node("Mul", [act, f"l{i}_up"], [f"l{i}_product"])
        down = g.linear(product, f"l{i}_down", mlp.down_proj, accuracy=accuracy("down"))
        x = g.node("Add", [x, down], [f"l{i}_x"])
    return x


def build_decoder(model: Any) -> tuple[Any, dict[str, Any]]:
    """(onnx ModelProto, layout) for a loaded transformers causal LM (float32)."""
    from onnx import TensorProto, helper

    config = model.config
    shape = layout(config)
    heads, kv_heads, head_dim = shape["heads"], shape["kv_heads"], shape["head_dim"]
    eps = float(config.rms_norm_eps)
    g = GraphBuilder()

    rotary_tables(g, config, shape["max_positions"], head_dim)

    def weight(tensor: Any) -> np.ndarray:
        return tensor.detach().float().numpy()

    inner = model.model
    table = g.half_table("embed_f16", weight(inner.embed_tokens.weight))
    x = g.gather_rows(table, "input_ids", "embedded")

    def attention(i: int, qkv: str) -> str:
        return g.node(
            "GroupQueryAttention",
            [qkv, "", "", f"past_{i}_k", f"past_{i}_v", "seqlens_k", "total_len",
             "cos_cache", "sin_cache", "position_ids"],
            [f"l{i}_attended", f"present_{i}_k", f"present_{i}_v"], domain="com.microsoft",
            num_heads=heads, kv_num_heads=kv_heads, do_rotary=1, rotary_interleaved=0)

    x = decoder_layers(g, model, x, attention)
    last = g.node("Slice", [x, g.constant("last_start", np.array([-1], np.int64)),
                            g.constant("last_end", np.array([2**62], np.int64)),
                            g.constant("last_axis", np.array([1], np.int64))], ["last"])
    normed = g.node("SimplifiedLayerNormalization",
                    [last, g.constant("norm_final", weight(inner.norm.weight))], ["normed"],
                    axis=-1, epsilon=eps)
    g.output_head(normed, model.lm_head,
                  table if tied(model.lm_head, inner.embed_tokens) else None)

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "new"]),
              helper.make_tensor_value_info("position_ids", TensorProto.INT64, [1, "new"]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, [1]),
              helper.make_tensor_value_info("total_len", TensorProto.INT32, [])]
    outputs = [helper.make_tensor_value_info("logits", f32, [1, shape["vocab_size"]])]
    cache_shape = [1, kv_heads, "capacity", head_dim]
    for past, present in zip(past_names(shape["layers"]), present_names(shape["layers"]),
                             strict=True):
        inputs.append(helper.make_tensor_value_info(past, f32, cache_shape))
        outputs.append(helper.make_tensor_value_info(present, f32, cache_shape))
    graph = helper.make_graph(g.nodes, "voicebot_decoder", inputs, outputs, g.initializers)
    # IR 8 / opset 17: what the onnxruntime builds voicebot supports all load.
    onnx_model = helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    shape["weights"] = g.weight_bits
    return onnx_model, shape


def export_graph(model_dir: Path, out_dir: Path, build: Callable[[Any], tuple[Any, dict]],
                 model_file: str, layout_file: str) -> dict[str, Any]:
    """Load the float model in ``model_dir``, ``build`` its graph and write it to
    ``out_dir`` as ``model_file`` (+ ``model_file``.data) with its layout as JSON."""
    import onnx
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    reason = unsupported_reason(model.config)
    if reason:
        raise ValueError(f"cannot export {model_dir} to ONNX: {reason}")
    onnx_model, shape = build(model)
    del model
    onnx.save_model(onnx_model, str(out_dir / model_file), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=model_file + ".data",
                    size_threshold=1024)
    # onnx writes the weights file private (0600); a models folder may be shared.
    (out_dir / (model_file + ".data")).chmod(0o644)
    (out_dir / layout_file).write_text(json.dumps(shape, indent=2), "utf-8")
    return shape


def export_decoder(model_dir: Path, out_dir: Path) -> None:
    """Write ``model.onnx`` (+ ``model.onnx.data``) and ``decoder.json`` into ``out_dir``."""
    shape = export_graph(model_dir, out_dir, build_decoder, MODEL_FILE, LAYOUT_FILE)
    log.info("built the ONNX decoder of %s in %s (%d matmuls 4-bit, %d 8-bit)", model_dir,
             out_dir, shape["weights"]["4bit"], shape["weights"]["8bit"])
