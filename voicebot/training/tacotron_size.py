"""A smaller Coqui Tacotron2, and its weights written so that the stock one loads them.

Coqui's Tacotron2 hard-codes its widths (embedding and encoder 512, attention and
decoder LSTMs 1024, postnet 512: 28.7M parameters). Trained on a 2-core CPU that costs
2.3x the step time of a 7.8M model with encoder 256, LSTMs 512 and postnet 256
(measured: batch 16, 60 tokens, 300 frames, one thread: 6.5 s against 2.8 s a step),
and minutes of speech cannot use the width anyway. So training shrinks the model
(``shrink``) and keeps the reduced weights in its checkpoints with their ``Sizes``.

A voice must still load through Coqui's ``setup_model(config)``, which always builds the
full widths. ``pad_state`` embeds the reduced weights into a full-width state dict with
zeros everywhere else, which computes exactly the same function: an LSTM unit whose
weights and biases are all zero keeps its cell at 0 (c = 0.5 c + 0.5 tanh 0) and outputs
0, a zero convolution channel with zero batch-norm scale and shift outputs 0, and every
weight reading a padded feature is 0. ``unpad_state`` takes the reduced weights back
out (a loader that knows the sizes can build the small, faster model).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

FULL_ENCODER, FULL_QUERY, FULL_DECODER, FULL_POSTNET = 512, 1024, 1024, 512
PRENET = 256  # Coqui's prenet output; fixed (the streaming engine requires 256 too)


@dataclass(frozen=True)
class Sizes:
    encoder: int = FULL_ENCODER  # embedding and encoder channels (even: bi-LSTM halves)
    query: int = FULL_QUERY  # attention LSTM units
    decoder: int = FULL_DECODER  # decoder LSTM units
    postnet: int = FULL_POSTNET  # postnet channels

    def __post_init__(self) -> None:
        if self.encoder % 2 or not (0 < self.encoder <= FULL_ENCODER) or \
                not (0 < self.query <= FULL_QUERY) or \
                not (0 < self.decoder <= FULL_DECODER) or \
                not (0 < self.postnet <= FULL_POSTNET):
            raise ValueError(f"unsupported Tacotron2 sizes {self}")

    @property
    def full(self) -> bool:
        return self == Sizes()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Sizes:
        return cls(**data) if data else cls()


REDUCED = Sizes(encoder=256, query=512, decoder=512, postnet=256)


def shrink(model, sizes: Sizes):
    """Replace ``model``'s modules (a freshly built Coqui Tacotron2) by ``sizes``-wide
    ones, initialised as Coqui initialises them. Returns the model."""
    if sizes.full:
        return model
    from torch import nn
    from TTS.tts.layers.tacotron.attentions import init_attn
    from TTS.tts.layers.tacotron.common_layers import Linear
    from TTS.tts.layers.tacotron.tacotron2 import ConvBNBlock, Encoder

    if model.double_decoder_consistency or model.bidirectional_decoder or \
            getattr(model, "num_speakers", 1) > 1 or model.use_gst:
        raise ValueError("only the plain single-speaker Tacotron2 can be resized")
    model.embedding = nn.Embedding(model.num_chars, sizes.encoder, padding_idx=0)
    model.encoder = Encoder(sizes.encoder)
    decoder, encoded = model.decoder, sizes.encoder
    attention = decoder.attention
    decoder.encoder_embedding_dim = encoded
    decoder.query_dim, decoder.decoder_rnn_dim = sizes.query, sizes.decoder
    decoder.attention_rnn = nn.LSTMCell(PRENET + encoded, sizes.query, bias=True)
    decoder.attention = init_attn(
        attn_type="original", query_dim=sizes.query, embedding_dim=encoded,
        attention_dim=attention.query_layer.linear_layer.out_features,
        location_attention=attention.location_attention,
        attention_location_n_filters=32, attention_location_kernel_size=31,
        windowing=attention.windowing, norm=model.attention_norm,
        forward_attn=attention.forward_attn, trans_agent=attention.trans_agent,
        forward_attn_mask=attention.forward_attn_mask, attn_K=model.attention_heads)
    decoder.decoder_rnn = nn.LSTMCell(sizes.query + encoded, sizes.decoder, bias=True)
    frames = decoder.frame_channels * decoder.r_init
    decoder.linear_projection = Linear(sizes.decoder + encoded, frames)
    decoder.stopnet = nn.Sequential(
        nn.Dropout(0.1), Linear(sizes.decoder + frames, 1, bias=True, init_gain="sigmoid"))
    channels, width = model.postnet.convolutions[0].convolution1d.in_channels, sizes.postnet
    layers = len(model.postnet.convolutions)
    model.postnet.convolutions = nn.ModuleList(
        [ConvBNBlock(channels, width, 5, "tanh")]
        + [ConvBNBlock(width, width, 5, "tanh") for _ in range(layers - 2)]
        + [ConvBNBlock(width, channels, 5, None)])
    return model


def _axis_maps(key: str, shape: tuple[int, ...], sizes: Sizes, frames: int,
               postnet_last: int) -> list[np.ndarray | None]:
    """For each axis of the reduced tensor ``key``: where its entries go in the full one
    (None: the axis has the same size in both)."""
    prefix = np.arange
    half, full_half = sizes.encoder // 2, FULL_ENCODER // 2
    # The bi-LSTM's output is [forward units, backward units]: both halves move.
    encoded = np.concatenate([prefix(half), full_half + prefix(half)])

    def gates(units: int, full: int) -> np.ndarray:  # LSTM rows: [in, forget, cell, out]
        return np.concatenate([k * full + prefix(units) for k in range(4)])

    e, q, d, p = sizes.encoder, sizes.query, sizes.decoder, sizes.postnet
    if key == "embedding.weight":
        return [None, prefix(e)]
    if match := re.fullmatch(r"encoder\.convolutions\.\d+\.(convolution1d|batch_normalization)"
                             r"\.(\w+)", key):
        if match[2] == "num_batches_tracked":
            return []
        return [prefix(e), prefix(e), None][:len(shape)]
    if key.startswith("encoder.lstm."):
        rows = gates(half, full_half)
        if key.startswith("encoder.lstm.weight_ih"):
            return [rows, prefix(e)]
        if key.startswith("encoder.lstm.weight_hh"):
            return [rows, prefix(half)]
        return [rows]
    # The decoder's two LSTM cells: (name, units, full units, their input's map).
    cells = {"decoder.attention_rnn.": (q, FULL_QUERY, np.concatenate(
                 [prefix(PRENET), PRENET + encoded])),  # [prenet output, context]
             "decoder.decoder_rnn.": (d, FULL_DECODER, np.concatenate(
                 [prefix(q), FULL_QUERY + encoded]))}  # [query, context]
    for name, (units, full_units, inputs) in cells.items():
        if key.startswith(name):
            rows = gates(units, full_units)
            if key.endswith("weight_ih"):
                return [rows, inputs]
            return [rows, prefix(units)] if key.endswith("weight_hh") else [rows]
    if key == "decoder.attention.query_layer.linear_layer.weight":
        return [None, prefix(q)]
    if key == "decoder.attention.inputs_layer.linear_layer.weight":
        return [None, encoded]
    if key == "decoder.linear_projection.linear_layer.weight":
        return [None, np.concatenate([prefix(d), FULL_DECODER + encoded])]
    if key == "decoder.stopnet.1.linear_layer.weight":
        return [None, np.concatenate([prefix(d), FULL_DECODER + prefix(frames)])]
    if match := re.fullmatch(r"postnet\.convolutions\.(\d+)\.(convolution1d|batch_normalization)"
                             r"\.(\w+)", key):
        if match[3] == "num_batches_tracked":
            return []
        first, last = match[1] == "0", int(match[1]) == postnet_last
        out_axis = None if last else prefix(p)
        if match[3] == "weight" and match[2] == "convolution1d":
            return [out_axis, None if first else prefix(p), None]
        return [out_axis]
    return [None] * len(shape)


def _postnet_last(state: dict) -> int:
    return max(int(k.split(".")[2]) for k in state if k.startswith("postnet.convolutions."))


def pad_state(reduced: dict, sizes: Sizes, full_template: dict) -> dict:
    """The full-width state dict computing what ``reduced`` computes (see the module
    docstring); ``full_template`` gives the full shapes (a stock model's state_dict)."""
    import torch

    if sizes.full:
        return dict(reduced)
    out = {}
    for key, index in _indices(full_template, reduced, sizes).items():
        if index is None:  # a scalar counter
            out[key] = reduced[key].clone()
            continue
        full = torch.zeros_like(full_template[key])
        full[index] = reduced[key].to(full.dtype)
        out[key] = full
    return out


def unpad_state(full: dict, sizes: Sizes, reduced_template: dict) -> dict:
    """The reduced weights inside a state dict written by ``pad_state``."""

    if sizes.full:
        return dict(full)
    return {key: full[key].clone() if index is None else full[key][index].clone()
            for key, index in _indices(full, reduced_template, sizes).items()}


def _indices(full: dict, reduced: dict, sizes: Sizes) -> dict:
    """Per key: the advanced index of the reduced tensor's entries inside the full one
    (None for scalars)."""
    import torch

    frames = full["decoder.linear_projection.linear_layer.weight"].shape[0]
    last = _postnet_last(full)
    out = {}
    for key, value in reduced.items():
        maps = _axis_maps(key, tuple(value.shape), sizes, frames, last)
        out[key] = None if not maps else torch.meshgrid(
            *(torch.from_numpy(m) if m is not None else torch.arange(n)
              for m, n in zip(maps, value.shape, strict=True)), indexing="ij")
    return out


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())
