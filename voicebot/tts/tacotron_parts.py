"""Coqui's Tacotron2 and HiFi-GAN cut into the pieces a streaming loop needs.

Coqui runs the Tacotron2 decoder as a Python loop over modules that keep their state in
attributes, which cannot be exported and costs Python overhead each step. These wrappers
take the same trained submodules and expose them as pure functions with explicit state:

- ``EncoderPart``: character ids -> encoder outputs and their attention projection;
- ``DecoderStep``: one autoregressive step (prenet, attention RNN, location-sensitive
  attention, decoder RNN, frame projection, stop token), state in, state out;
- ``PostnetPart``: decoder mel -> refined mel (the residual is added here);
- ``VocoderPart``: mel -> waveform with the HiFi-GAN generator (no edge padding; the
  streaming code pads and overlaps windows itself).

The same modules run in torch or, exported (``voicebot.tts.tacotron_onnx``), in
onnxruntime, so both backends compute exactly what Coqui's ``inference`` computes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch spelling)
from torch import nn

# Names of the decoder state tensors, in the order DecoderStep takes and returns them.
STATE_NAMES = ("query", "attention_cell", "decoder_hidden", "decoder_cell", "context",
               "attention_weights", "attention_weights_cum")


class UnsupportedModelError(ValueError):
    """A Tacotron2 variant these wrappers do not reproduce (they check rather than guess)."""


def check_supported(model) -> None:
    decoder, attention = model.decoder, model.decoder.attention
    problems = []
    if type(attention).__name__ != "OriginalAttention":
        problems.append(f"attention type {type(attention).__name__}")
    elif attention.windowing or attention.forward_attn:
        problems.append("attention windowing / forward attention")
    if getattr(model, "num_speakers", 1) > 1 or getattr(model, "use_gst", False) or \
            getattr(model, "use_capacitron_vae", False):
        problems.append("multi-speaker, GST or Capacitron conditioning")
    if decoder.prenet.prenet_type not in ("original", "bn") or \
            len(decoder.prenet.linear_layers) != 2 or decoder.prenet_dim != 256:
        problems.append("a prenet other than Coqui's two 256-unit layers")
    if problems:
        raise UnsupportedModelError("this Tacotron2 uses " + ", ".join(problems) +
                                    ", which the streaming engine does not support")


class EncoderPart(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.embedding = model.embedding
        self.encoder = model.encoder
        self.inputs_layer = model.decoder.attention.inputs_layer

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedded = self.embedding(ids).transpose(1, 2)
        outputs = self.encoder.inference(embedded)  # (1, T, 512)
        return outputs, self.inputs_layer(outputs)


class DecoderStep(nn.Module):
    """One decoder step of Coqui's ``Decoder.decode`` with the prenet in front of it.

    ``prenet_masks`` carry the prenet dropout (values 0 or 2) when the model was trained
    to keep it at inference, and ones otherwise: randomness stays outside the graph.
    """

    def __init__(self, model) -> None:
        super().__init__()
        decoder = model.decoder
        self.prenet_layers = decoder.prenet.linear_layers
        self.attention_rnn = decoder.attention_rnn
        self.attention = decoder.attention
        self.decoder_rnn = decoder.decoder_rnn
        self.linear_projection = decoder.linear_projection
        self.stop_linear = decoder.stopnet[1]  # [0] is dropout, a no-op at inference
        self.frames = decoder.frame_channels * decoder.r
        self.location = bool(decoder.attention.location_attention)
        self.sigmoid_norm = decoder.attention.norm == "sigmoid"

    def forward(self, memory, prenet_mask_1, prenet_mask_2, query, attention_cell,
                decoder_hidden, decoder_cell, context, attention_weights,
                attention_weights_cum, encoder_outputs, processed_inputs):
        x = memory
        for layer, mask in zip(self.prenet_layers, (prenet_mask_1, prenet_mask_2), strict=True):
            x = F.relu(layer(x)) * mask
        query, attention_cell = self.attention_rnn(torch.cat((x, context), -1),
                                                   (query, attention_cell))
        processed_query = self.attention.query_layer(query.unsqueeze(1))
        if self.location:
            stacked = torch.cat((attention_weights.unsqueeze(1),
                                 attention_weights_cum.unsqueeze(1)), dim=1)
            location = self.attention.location_layer(stacked)
            energies = self.attention.v(torch.tanh(processed_query + location + processed_inputs))
        else:
            energies = self.attention.v(torch.tanh(processed_query + processed_inputs))
        energies = energies.squeeze(-1)
        if self.sigmoid_norm:
            alignment = torch.sigmoid(energies)
            alignment = alignment / alignment.sum(dim=1, keepdim=True)
        else:
            alignment = torch.softmax(energies, dim=-1)
        if self.location:
            attention_weights_cum = attention_weights_cum + alignment
        context = torch.bmm(alignment.unsqueeze(1), encoder_outputs).squeeze(1)
        decoder_hidden, decoder_cell = self.decoder_rnn(torch.cat((query, context), -1),
                                                        (decoder_hidden, decoder_cell))
        hidden_context = torch.cat((decoder_hidden, context), dim=1)
        frames = self.linear_projection(hidden_context)
        stop_logit = self.stop_linear(torch.cat((decoder_hidden, frames), dim=1))
        frames = frames[:, :self.frames]
        return (frames, stop_logit, query, attention_cell, decoder_hidden, decoder_cell,
                context, alignment, attention_weights_cum)


class PostnetPart(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.postnet = model.postnet

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (1, 80, T) -> (1, 80, T)
        return mel + self.postnet(mel)


class VocoderPart(nn.Module):
    def __init__(self, generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (1, 80, T) -> (1, T * hop)
        return self.generator.forward(mel).reshape(1, -1)


def initial_state(encoder_outputs: torch.Tensor, model) -> dict[str, torch.Tensor]:
    """Zero decoder state for one utterance (what Coqui's ``_init_states`` makes)."""
    decoder = model.decoder
    steps = encoder_outputs.shape[1]
    like = dict(device=encoder_outputs.device, dtype=encoder_outputs.dtype)
    return {
        "query": torch.zeros(1, decoder.query_dim, **like),
        "attention_cell": torch.zeros(1, decoder.query_dim, **like),
        "decoder_hidden": torch.zeros(1, decoder.decoder_rnn_dim, **like),
        "decoder_cell": torch.zeros(1, decoder.decoder_rnn_dim, **like),
        "context": torch.zeros(1, decoder.encoder_embedding_dim, **like),
        "attention_weights": torch.zeros(1, steps, **like),
        "attention_weights_cum": torch.zeros(1, steps, **like),
    }


def vocoder_hop(generator) -> int:
    """Audio samples per mel frame: the product of the generator's upsampling strides."""
    return math.prod(int(layer.stride[0]) for layer in generator.ups)
