"""Split a Piper voice into its text-to-latent part and its waveform decoder.

A Piper (VITS) graph runs text encoder, duration predictor and flow (cheap, about a
fifth of the time), then a HiFi-GAN-style decoder that turns the latent frames into
audio (the rest). The decoder is convolutional with a short receptive field, so it can
decode the latent in windows with a few frames of context on each side and give the
same samples as one long call. Cutting the graph at the decoder's input lets the first
audio of a sentence leave after the cheap part plus one short window.

The decoder's 1-D convolutions are then rewritten as 2-D ones (``conv_layout``: the same
function, ~15% faster on onnxruntime's CPU kernels). The cut is made once with the
``onnx`` package and kept in the model store's conversion cache
(``voicebot.models.conversions``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from voicebot.tts.conv_layout import convs_to_2d

log = logging.getLogger(__name__)

SPLIT_VERSION = "2"  # bump when the cut changes, so old conversions are rebuilt
CONVERSION_NAME = "piper-split"


@dataclass(frozen=True)
class SplitVoice:
    front: Path  # text ids -> latent frames
    decoder: Path  # latent frames -> audio
    latent_name: str


def _decoder_input(graph) -> str:
    """The tensor that feeds the decoder's first convolution ("/dec/conv_pre")."""
    for node in graph.node:
        if node.op_type == "Conv" and node.name.startswith("/dec/") and "conv_pre" in node.name:
            return node.input[0]
    raise ValueError("no /dec/conv_pre convolution: not a VITS graph this code can split")


def _cut(model_path: Path, out_dir: Path) -> None:
    import onnx  # only needed once per voice, so imported here
    import onnx.utils

    model = onnx.load(str(model_path))
    latent = _decoder_input(model.graph)
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    del model
    onnx.utils.extract_model(str(model_path), str(out_dir / "front.onnx"), inputs, [latent])
    onnx.utils.extract_model(str(model_path), str(out_dir / "decoder.onnx"), [latent], outputs)
    try:
        convs_to_2d(out_dir / "decoder.onnx", out_dir / "decoder.onnx")
    except ValueError as exc:  # an unusual decoder: keep it as it is (slower, same audio)
        log.warning("%s: decoder left with 1-D convolutions: %s", model_path.name, exc)
    (out_dir / "latent_name.txt").write_text(latent, encoding="utf-8")


def split_voice(model_path: Path, model_id: str | None = None) -> SplitVoice:
    """The two halves of ``model_path``, cut on first use; raises if it cannot be cut.

    Cached by the model store's conversion cache (rebuilt when the voice file changes).
    """
    from voicebot.models.conversions import converted

    model_path = Path(model_path)
    folder = converted(model_id or f"piper-{model_path.stem}", CONVERSION_NAME, [model_path],
                       functools.partial(_cut, model_path), version=SPLIT_VERSION)
    latent = (folder / "latent_name.txt").read_text(encoding="utf-8").strip()
    return SplitVoice(folder / "front.onnx", folder / "decoder.onnx", latent)
