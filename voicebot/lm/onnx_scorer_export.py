"""Build the chat model's scoring graph: log-probabilities of given tokens, a batch of
sequences at once, on a shared cached prefix (GUI-free).

The generation graph (``onnx_export``) computes the last position's logits of one
sequence; scoring recognition hypotheses needs every position's log-probability of the
token that follows, for several hypotheses that share the conversation before them.
This graph does that in one run:

Inputs: ``input_ids`` [B, T] int64 (right-padded rows), ``position_ids`` [B, T] int64,
``attention_bias`` [1, 1, groups * T, P + T] float32 (0 where a query may look, a large
negative number elsewhere; the T rows repeated for each of the ``heads / kv_heads`` query
heads that share a key head; one causal mask serves every right-padded row, since only a
row's padding can see its padding), ``targets`` [B, S]
int64 (the token expected after each of the last S positions), and ``past_<i>_k`` /
``past_<i>_v`` [1, kv_heads, P, head_dim] float32: the shared prefix, broadcast to every
row. Outputs: ``token_logprobs`` [B, S] (natural-log probability of each target) and
``present_<i>_k`` / ``present_<i>_v`` [B, kv_heads, P + T, head_dim] (the scorer keeps
them of a one-row run over the conversation as the next runs' past).

Attention is written with plain MatMul/Softmax (ONNX Runtime's GroupQueryAttention wants
the decoder's in-place cache and one length per row); grouped-query attention folds the
query heads of a key head into its rows instead of copying keys. The weights are those of
the generation graph (``GraphBuilder.linear``: exact 4-bit or 8-bit blocks); the output
head runs at 8 bits over the S scored positions only; the token embeddings are stored in
float16 (``GraphBuilder.half_table``).

Activations: the q/k/v and down projections compute in float32, the others with int8
activations per block of 32 inputs (either way a row's score never depends on the other
rows). Measured on the embedded model against the float32 torch model, six n-bests of
3-12 tokens: int8 everywhere was off by up to 1.1 nats on a 4-token hypothesis (0.28 a
token); float q/k/v + down by at most 0.08 a token (0.5 nats on a 6-token one), at the
same speed on one thread (5-best of names: 270 vs 255 ms) and faster on two (166 vs 221
ms), idle 2-core AVX2 machine. Float everywhere: 2.4x slower; the 8-bit head in float:
3x slower (it de-quantises 28M weights on every run).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.lm.onnx_export import (
    GraphBuilder,
    decoder_layers,
    export_graph,
    layout,
    rotary_tables,
)

log = logging.getLogger(__name__)

# Bump when the graph changes: cached exports are then rebuilt.
EXPORT_VERSION = "1"
MODEL_FILE = "scorer.onnx"
LAYOUT_FILE = "scorer.json"
# The scorer sees the last two messages and a hypothesis: a few hundred tokens at most.
MAX_POSITIONS = 4096


def _attention(g: GraphBuilder, i: int, qkv: str, heads: int, kv_heads: int,
               head_dim: int) -> str:
    """Grouped-query attention of layer ``i`` on its fused q/k/v projection [B, T, ...]
    with the layer's past; returns [B, T, heads * head_dim]."""
    sizes = g.constant(f"l{i}_qkv_sizes", np.array(
        [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], np.int64))
    g.node("Split", [qkv, sizes], [f"l{i}_q", f"l{i}_k", f"l{i}_v"], axis=-1)
    rotary = ["position_ids", "cos_cache", "sin_cache"]
    q = g.node("RotaryEmbedding", [f"l{i}_q", *rotary], [f"l{i}_q_rot"],
               domain="com.microsoft", num_heads=heads, interleaved=0)
    k = g.node("RotaryEmbedding", [f"l{i}_k", *rotary], [f"l{i}_k_rot"],
               domain="com.microsoft", num_heads=kv_heads, interleaved=0)
    # Queries: [B, T, kv, groups, d] -> [B, kv, groups * T, d], pre-scaled.
    q = g.node("Reshape", [q, "q_split_shape"], [f"l{i}_q5"])
    q = g.node("Transpose", [q], [f"l{i}_q_t"], perm=[0, 2, 3, 1, 4])
    q = g.node("Reshape", [q, "q_rows_shape"], [f"l{i}_q_rows"])
    q = g.node("Mul", [q, "attention_scale"], [f"l{i}_q_scaled"])
    keys = []
    for kind, new in (("k", k), ("v", f"l{i}_v")):
        new = g.node("Reshape", [new, "kv_split_shape"], [f"l{i}_{kind}4"])
        new = g.node("Transpose", [new], [f"l{i}_{kind}_t"], perm=[0, 2, 1, 3])
        past = g.node("Expand", [f"past_{i}_{kind}", "batch_shape"], [f"l{i}_past_{kind}"])
        keys.append(g.node("Concat", [past, new], [f"present_{i}_{kind}"], axis=2))
    k_t = g.node("Transpose", [keys[0]], [f"l{i}_k_tt"], perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [q, k_t], [f"l{i}_scores"])
    scores = g.node("Add", [scores, "attention_bias"], [f"l{i}_masked"])
    probs = g.node("Softmax", [scores], [f"l{i}_probs"], axis=-1)
    ctx = g.node("MatMul", [probs, keys[1]], [f"l{i}_ctx"])
    # [B, kv, groups * T, d] -> [B, T, heads * d], heads in the model's order.
    ctx = g.node("Reshape", [ctx, "ctx_split_shape"], [f"l{i}_ctx5"])
    ctx = g.node("Transpose", [ctx], [f"l{i}_ctx_t"], perm=[0, 3, 1, 2, 4])
    return g.node("Reshape", [ctx, "ctx_merge_shape"], [f"l{i}_attended"])


def build_scorer(model: Any) -> tuple[Any, dict[str, Any]]:
    """(onnx ModelProto, layout) of the scoring graph for a loaded transformers causal LM."""
    from onnx import TensorProto, helper

    config = model.config
    shape = layout(config)
    shape["max_positions"] = min(shape["max_positions"], MAX_POSITIONS)
    shape["export_version"] = EXPORT_VERSION
    heads, kv_heads, head_dim = shape["heads"], shape["kv_heads"], shape["head_dim"]
    groups = heads // kv_heads
    eps = float(config.rms_norm_eps)
    g = GraphBuilder()
    rotary_tables(g, config, shape["max_positions"], head_dim)
    g.constant("q_split_shape", np.array([0, 0, kv_heads, groups, head_dim], np.int64))
    g.constant("q_rows_shape", np.array([0, 0, -1, head_dim], np.int64))
    g.constant("kv_split_shape", np.array([0, 0, kv_heads, head_dim], np.int64))
    g.constant("ctx_split_shape", np.array([0, 0, groups, -1, head_dim], np.int64))
    g.constant("ctx_merge_shape", np.array([0, 0, heads * head_dim], np.int64))
    g.constant("attention_scale", np.array(head_dim ** -0.5, np.float32))
    # [B, 1, 1, 1]: Expand broadcasts the one-row past to every row.
    batch = g.node("Shape", ["input_ids"], ["ids_shape"], start=0, end=1)
    g.node("Concat", [batch, g.constant("ones3", np.ones(3, np.int64))], ["batch_shape"],
           axis=0)

    def weight(tensor: Any) -> np.ndarray:
        return tensor.detach().float().numpy()

    inner = model.model
    table = g.half_table("embed_f16", weight(inner.embed_tokens.weight))
    x = g.gather_rows(table, "input_ids", "embedded")
    x = decoder_layers(
        g, model, x, lambda i, qkv: _attention(g, i, qkv, heads, kv_heads, head_dim),
        float_activations=("qkv", "down"))
    # Only the last S positions (S: the targets' width) go through the output head.
    scored = g.node("Shape", ["targets"], ["scored_count"], start=1, end=2)
    start = g.node("Neg", [scored], ["scored_start"])
    last = g.node("Slice", [x, start, g.constant("scored_end", np.array([2**62], np.int64)),
                            g.constant("time_axis", np.array([1], np.int64))], ["scored_x"])
    normed = g.node("SimplifiedLayerNormalization",
                    [last, g.constant("norm_final", weight(inner.norm.weight))], ["normed"],
                    axis=-1, epsilon=eps)
    logits = g.linear(normed, "logits", model.lm_head)
    logp = g.node("LogSoftmax", [logits], ["logprobs"], axis=-1)
    wanted = g.node("Unsqueeze", ["targets", g.constant("last_axis", np.array([-1], np.int64))],
                    ["targets3"])
    picked = g.node("GatherElements", [logp, wanted], ["picked"], axis=2)
    g.node("Squeeze", [picked, "last_axis"], ["token_logprobs"])

    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs = [helper.make_tensor_value_info("input_ids", i64, ["batch", "new"]),
              helper.make_tensor_value_info("position_ids", i64, ["batch", "new"]),
              helper.make_tensor_value_info("attention_bias", f32,
                                            [1, 1, "query_rows", "total"]),
              helper.make_tensor_value_info("targets", i64, ["batch", "scored"])]
    outputs = [helper.make_tensor_value_info("token_logprobs", f32, ["batch", "scored"])]
    for i in range(shape["layers"]):
        for kind in ("k", "v"):
            inputs.append(helper.make_tensor_value_info(
                f"past_{i}_{kind}", f32, [1, kv_heads, "past", head_dim]))
            outputs.append(helper.make_tensor_value_info(
                f"present_{i}_{kind}", f32, ["batch", kv_heads, "total", head_dim]))
    graph = helper.make_graph(g.nodes, "voicebot_scorer", inputs, outputs, g.initializers)
    onnx_model = helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    shape["weights"] = g.weight_bits
    return onnx_model, shape


def export_scorer(model_dir: Path, out_dir: Path) -> None:
    """Write ``scorer.onnx`` (+ its weights file) and ``scorer.json`` into ``out_dir``."""
    export_graph(model_dir, out_dir, build_scorer, MODEL_FILE, LAYOUT_FILE)
    log.info("built the ONNX scorer of %s in %s", model_dir, out_dir)
