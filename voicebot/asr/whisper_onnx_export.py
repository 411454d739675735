"""Build Whisper's encoder and decoder step as ONNX graphs, from the weights alone.

Why: the conversation process ran Whisper on torch + transformers, and importing those
two costs ~680 MB of resident memory before a single weight is loaded (``bench turn``
peaked at 1.47-1.57 GB against a 1.2 GB target). ONNX Runtime is already in the
process for the chat model, the voices and the VAD. The graphs are written node by node
from the converted checkpoint's safetensors (numpy only), like the chat model's
(``voicebot.lm.onnx_export``): no torch at export time either, and the graph has exactly
the shape ``whisper_onnx`` needs:

- ``encoder.onnx``: log-mel [1, 80, frames] -> encoder states [1, frames/2, d], with
  extra keys/values per layer (``context_<i>_k``/``_v`` [1, heads, C, head_dim]) that the
  speech frames attend to as well, and a bias over all keys (see ``WhisperModel``'s
  ``_silence_tail`` for why the speech must see the silent rest of the 30 s window).
  It also returns each layer's own keys/values (to build that context once from
  silence) and every decoder layer's cross-attention keys/values for the states.
- ``decoder.onnx``: token ids [B, L], the cache length, per layer the past self-attention
  keys/values [B, heads, P, head_dim] and the cross-attention keys/values
  [1, heads, S, head_dim] (one copy, broadcast over the beams) -> log-probabilities
  [B, L, vocab], the grown self-attention cache, and the cross-attention weights of the
  layers holding alignment heads (for word timings, free: they are computed anyway).

Every linear layer runs as an 8-bit MatMulNBits (blocks of 32, ``voicebot.lm.
onnx_quantize``); the token embedding stays float16 (looked up a few rows per step).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.lm.onnx_quantize import quantized_matmul

log = logging.getLogger(__name__)

# Bump when the graphs change: cached exports are then rebuilt.
EXPORT_VERSION = "1"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
LAYOUT_FILE = "whisper_onnx.json"
MEL_FILTERS_FILE = "mel_filters.npy"
# The model folder files the runtime reads besides the graphs.
COPIED_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json",
                "generation_config.json", "special_tokens_map.json")
OPSET = 17
IR_VERSION = 9
LN_EPSILON = 1e-5


class _Graph:
    """Nodes and float32 initializers of one graph, with Whisper's building blocks."""

    def __init__(self, weights: dict[str, np.ndarray], heads: int, quantize: bool) -> None:
        self.weights = weights
        self.heads = heads
        self.quantize = quantize
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def w(self, key: str) -> str:
        """The checkpoint tensor ``key`` as a float32 initializer."""
        return self.const(key, self.weights[key].astype(np.float32))

    def op(self, op_type: str, inputs: list[str], stem: str | None = None,
           domain: str = "", outputs: list[str] | None = None, **attributes: Any) -> str:
        from onnx import helper

        outputs = outputs or [self.name(stem or op_type.lower())]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, domain=domain,
                                           name=f"{outputs[0]}_node", **attributes))
        return outputs[0]

    def matmul(self, x: str, out: str, weight: np.ndarray, stem: str) -> str:
        """``x @ weight`` ([K, N]): 8-bit MatMulNBits, or float32 without quantisation."""
        weight = np.ascontiguousarray(weight, dtype=np.float32)
        if not self.quantize:
            return self.op("MatMul", [x, self.const(self.name(stem), weight)], outputs=[out])
        nodes, inits, _ = quantized_matmul(x, out, weight, self.name(stem))
        self.nodes += nodes
        self.initializers += inits
        return out

    def linear(self, x: str, prefix: str, out: str | None = None) -> str:
        """``x @ W.T + b`` for the checkpoint's ``prefix``.weight/.bias."""
        bias = self.weights.get(f"{prefix}.bias")
        target = out if bias is None and out else self.name(prefix.replace(".", "_"))
        self.matmul(x, target, self.weights[f"{prefix}.weight"].T, prefix.replace(".", "_"))
        if bias is None:
            return target
        return self.op("Add", [target, self.w(f"{prefix}.bias")], outputs=[out] if out else None)

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op("LayerNormalization", [x, self.w(f"{prefix}.weight"),
                                              self.w(f"{prefix}.bias")],
                       axis=-1, epsilon=LN_EPSILON)

    def gelu(self, x: str) -> str:
        return self.op("Gelu", [x], domain="com.microsoft")  # the exact (erf) GELU

    def split_heads(self, x: str, out: str | None = None) -> str:
        """[B, T, d] -> [B, heads, T, head_dim]."""
        shape = self.const(self.name("heads_shape"), np.array([0, 0, self.heads, -1], np.int64))
        split = self.op("Reshape", [x, shape])
        return self.op("Transpose", [split], perm=[0, 2, 1, 3],
                       outputs=[out] if out else None)

    def merge_heads(self, x: str) -> str:
        """[B, heads, T, head_dim] -> [B, T, d]."""
        moved = self.op("Transpose", [x], perm=[0, 2, 1, 3])
        shape = self.const(self.name("merge_shape"), np.array([0, 0, -1], np.int64))
        return self.op("Reshape", [moved, shape])

    def attend(self, q: str, k: str, v: str, bias: str | None = None,
               probs_out: str | None = None) -> str:
        """softmax(q k^T + bias) v; q is already scaled."""
        kt = self.op("Transpose", [k], perm=[0, 1, 3, 2])
        logits = self.op("MatMul", [q, kt])
        if bias is not None:
            logits = self.op("Add", [logits, bias])
        probs = self.op("Softmax", [logits], axis=-1, outputs=[probs_out] if probs_out else None)
        return self.op("MatMul", [probs, v])

    def model(self, inputs: list[Any], outputs: list[Any], name: str) -> Any:
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[
            helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)])
        model.ir_version = IR_VERSION  # what ONNX Runtime 1.31 reads (onnx 1.23 writes 14)
        return model


def _value(name: str, dtype: int, shape: list) -> Any:
    from onnx import helper

    return helper.make_tensor_value_info(name, dtype, shape)


def build_encoder(weights: dict[str, np.ndarray], config: dict, quantize: bool = True) -> Any:
    from onnx import TensorProto

    heads = int(config["encoder_attention_heads"])
    layers = int(config["encoder_layers"])
    dec_layers = int(config["decoder_layers"])
    d = int(config["d_model"])
    head_dim = d // heads
    g = _Graph(weights, heads, quantize)
    p = "model.encoder"
    h = g.gelu(g.op("Conv", ["mel", g.w(f"{p}.conv1.weight"), g.w(f"{p}.conv1.bias")],
                    pads=[1, 1], kernel_shape=[3]))
    h = g.gelu(g.op("Conv", [h, g.w(f"{p}.conv2.weight"), g.w(f"{p}.conv2.bias")],
                    pads=[1, 1], strides=[2], kernel_shape=[3]))
    h = g.op("Transpose", [h], perm=[0, 2, 1])  # [1, frames/2, d]
    # Positions 0..n-1 of the learned table: Slice by the sequence length.
    n = g.op("Shape", [h], start=1, end=2)
    zero = g.const("zero_1d", np.array([0], np.int64))
    positions = g.op("Slice", [g.w(f"{p}.embed_positions.weight"), zero, n])
    h = g.op("Add", [h, positions])
    scale = g.const("q_scale", np.array(head_dim ** -0.5, np.float32))
    outputs = []
    for i in range(layers):
        lp = f"{p}.layers.{i}"
        x = g.layer_norm(h, f"{lp}.self_attn_layer_norm")
        q = g.op("Mul", [g.split_heads(g.linear(x, f"{lp}.self_attn.q_proj")), scale])
        k = g.split_heads(g.linear(x, f"{lp}.self_attn.k_proj"), out=f"layer_{i}_k")
        v = g.split_heads(g.linear(x, f"{lp}.self_attn.v_proj"), out=f"layer_{i}_v")
        k_all = g.op("Concat", [k, f"context_{i}_k"], axis=2)
        v_all = g.op("Concat", [v, f"context_{i}_v"], axis=2)
        mixed = g.merge_heads(g.attend(q, k_all, v_all, bias="context_bias"))
        h = g.op("Add", [h, g.linear(mixed, f"{lp}.self_attn.out_proj")])
        x = g.layer_norm(h, f"{lp}.final_layer_norm")
        x = g.linear(g.gelu(g.linear(x, f"{lp}.fc1")), f"{lp}.fc2")
        h = g.op("Add", [h, x])
        outputs += [f"layer_{i}_k", f"layer_{i}_v"]
    g.op("LayerNormalization", [h, g.w(f"{p}.layer_norm.weight"), g.w(f"{p}.layer_norm.bias")],
         axis=-1, epsilon=LN_EPSILON, outputs=["states"])
    for i in range(dec_layers):
        lp = f"model.decoder.layers.{i}.encoder_attn"
        g.split_heads(g.linear("states", f"{lp}.k_proj"), out=f"cross_{i}_k")
        g.split_heads(g.linear("states", f"{lp}.v_proj"), out=f"cross_{i}_v")
        outputs += [f"cross_{i}_k", f"cross_{i}_v"]
    f = TensorProto.FLOAT
    inputs = [_value("mel", f, [1, int(config["num_mel_bins"]), "frames"]),
              _value("context_bias", f, [1, "keys"])]
    for i in range(layers):
        inputs += [_value(f"context_{i}_k", f, [1, heads, "context", head_dim]),
                   _value(f"context_{i}_v", f, [1, heads, "context", head_dim])]
    out_values = [_value("states", f, [1, "positions", d])]
    out_values += [_value(name, f, [1, heads, "positions", head_dim]) for name in outputs]
    return g.model(inputs, out_values, "whisper_encoder")


def build_decoder(weights: dict[str, np.ndarray], config: dict,
                  alignment_layers: list[int], quantize: bool = True) -> Any:
    from onnx import TensorProto

    heads = int(config["decoder_attention_heads"])
    layers = int(config["decoder_layers"])
    d = int(config["d_model"])
    head_dim = d // heads
    g = _Graph(weights, heads, quantize)
    p = "model.decoder"
    embedding = g.const("embed_tokens_half", weights[f"{p}.embed_tokens.weight"]
                        .astype(np.float16))
    h = g.op("Cast", [g.op("Gather", [embedding, "input_ids"], axis=0)],
             to=TensorProto.FLOAT)
    # Positions past .. past + L - 1, and the causal mask over past + L keys.
    one = g.const("one", np.array(1, np.int64))
    length = g.op("Squeeze", [g.op("Shape", [h], start=1, end=2)],)
    total = g.op("Add", ["past_length", length])
    positions = g.op("Range", ["past_length", total, one])
    h = g.op("Add", [h, g.op("Gather", [g.w(f"{p}.embed_positions.weight"), positions],
                             axis=0)])
    keys = g.op("Range", [g.const("zero", np.array(0, np.int64)), total, one])
    later = g.op("Greater", [g.op("Unsqueeze", [keys, g.const("ax0", np.array([0], np.int64))]),
                             g.op("Unsqueeze", [positions,
                                                g.const("ax1", np.array([1], np.int64))])])
    mask = g.op("Where", [later, g.const("minus_inf", np.array(-np.inf, np.float32)),
                          g.const("zero_f", np.array(0.0, np.float32))])
    scale = g.const("q_scale", np.array(head_dim ** -0.5, np.float32))
    for i in range(layers):
        lp = f"{p}.layers.{i}"
        x = g.layer_norm(h, f"{lp}.self_attn_layer_norm")
        q = g.op("Mul", [g.split_heads(g.linear(x, f"{lp}.self_attn.q_proj")), scale])
        k = g.split_heads(g.linear(x, f"{lp}.self_attn.k_proj"))
        v = g.split_heads(g.linear(x, f"{lp}.self_attn.v_proj"))
        k_all = g.op("Concat", [f"past_{i}_k", k], axis=2, outputs=[f"present_{i}_k"])
        v_all = g.op("Concat", [f"past_{i}_v", v], axis=2, outputs=[f"present_{i}_v"])
        mixed = g.merge_heads(g.attend(q, k_all, v_all, bias=mask))
        h = g.op("Add", [h, g.linear(mixed, f"{lp}.self_attn.out_proj")])
        x = g.layer_norm(h, f"{lp}.encoder_attn_layer_norm")
        q = g.op("Mul", [g.split_heads(g.linear(x, f"{lp}.encoder_attn.q_proj")), scale])
        probs = f"cross_probs_{i}" if i in alignment_layers else None
        mixed = g.merge_heads(g.attend(q, f"cross_{i}_k", f"cross_{i}_v", probs_out=probs))
        h = g.op("Add", [h, g.linear(mixed, f"{lp}.encoder_attn.out_proj")])
        x = g.layer_norm(h, f"{lp}.final_layer_norm")
        x = g.linear(g.gelu(g.linear(x, f"{lp}.fc1")), f"{lp}.fc2")
        h = g.op("Add", [h, x])
    h = g.layer_norm(h, f"{p}.layer_norm")
    # The output projection is tied to the token embedding.
    g.matmul(h, "logits", weights[f"{p}.embed_tokens.weight"].T, "proj_out")
    g.op("LogSoftmax", ["logits"], axis=-1, outputs=["logprobs"])
    f = TensorProto.FLOAT
    inputs = [_value("input_ids", TensorProto.INT64, ["batch", "length"]),
              _value("past_length", TensorProto.INT64, [])]
    outputs = [_value("logprobs", f, ["batch", "length", int(config["vocab_size"])])]
    for i in range(layers):
        inputs += [_value(f"past_{i}_k", f, ["batch", heads, "past", head_dim]),
                   _value(f"past_{i}_v", f, ["batch", heads, "past", head_dim])]
        outputs += [_value(f"present_{i}_k", f, ["batch", heads, "total", head_dim]),
                    _value(f"present_{i}_v", f, ["batch", heads, "total", head_dim])]
    for i in range(layers):
        inputs += [_value(f"cross_{i}_k", f, [1, heads, "audio", head_dim]),
                   _value(f"cross_{i}_v", f, [1, heads, "audio", head_dim])]
    outputs += [_value(f"cross_probs_{i}", f, ["batch", heads, "length", "audio"])
                for i in alignment_layers]
    return g.model(inputs, outputs, "whisper_decoder_step")


def mel_filters(config: dict, n_fft: int = 400, sampling_rate: int = 16000) -> np.ndarray:
    """Whisper's mel filterbank (slaney scale and area normalisation), [mels, n_fft/2+1]."""
    import librosa

    return librosa.filters.mel(sr=sampling_rate, n_fft=n_fft,
                               n_mels=int(config["num_mel_bins"])).astype(np.float32)


def export_whisper(model_dir: str | Path, out_dir: str | Path, quantize: bool = True) -> Path:
    """Write the two graphs, the mel filterbank, the tokenizer and configs to ``out_dir``.

    ``quantize=False``: float32 weights (a reference for parity checks)."""
    import shutil

    import onnx
    from safetensors.numpy import load_file

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    config = json.loads((model_dir / "config.json").read_text("utf-8"))
    generation = json.loads((model_dir / "generation_config.json").read_text("utf-8"))
    weights = load_file(str(model_dir / "model.safetensors"))
    alignment = [[int(layer), int(head)] for layer, head in
                 generation.get("alignment_heads") or []]
    alignment_layers = sorted({layer for layer, _ in alignment})
    onnx.save(build_encoder(weights, config, quantize), str(out_dir / ENCODER_FILE))
    onnx.save(build_decoder(weights, config, alignment_layers, quantize),
              str(out_dir / DECODER_FILE))
    np.save(out_dir / MEL_FILTERS_FILE, mel_filters(config))
    for name in COPIED_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    layout = {"encoder_layers": int(config["encoder_layers"]),
              "decoder_layers": int(config["decoder_layers"]),
              "heads": int(config["decoder_attention_heads"]),
              "d_model": int(config["d_model"]), "alignment_heads": alignment}
    (out_dir / LAYOUT_FILE).write_text(json.dumps(layout, indent=1), "utf-8")
    log.info("exported Whisper %s to ONNX", model_dir.name)
    return out_dir
