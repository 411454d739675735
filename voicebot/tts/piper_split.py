"""Split a Piper voice into its text-to-latent part and its waveform decoder.

A Piper (VITS) graph runs text encoder and duration predictor (the prior), then a flow
that turns the prior's frames into the latent, then a HiFi-GAN-style decoder that turns
the latent frames into audio (most of the time). Flow and decoder are convolutional
with short receptive fields, so both can run on windows of frames with enough context on
each side and give the same samples as one long call. Cutting the graph at the flow's
and at the decoder's input lets the first audio of a sentence leave after the prior,
the flow over the first window's frames and one short decoder window.

The decoder's 1-D convolutions are then rewritten as 2-D ones (``conv_layout``: the same
function, ~15% faster on onnxruntime's CPU kernels). The cut is made once with the
``onnx`` package and kept in the model store's conversion cache
(``voicebot.models.conversions``).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from voicebot.models.conversions import converted
from voicebot.tts.conv_layout import convs_to_2d

log = logging.getLogger(__name__)

SPLIT_VERSION = "3"  # bump when the cut changes, so old conversions are rebuilt
CONVERSION_NAME = "piper-split"


@dataclass(frozen=True)
class SplitVoice:
    front: Path  # text ids -> latent frames; with a flow: -> (prior frames, frame mask)
    decoder: Path  # latent frames -> audio
    latent_name: str
    flow: Path | None = None  # (prior frames, frame mask) -> latent frames
    prior_name: str = ""
    mask_name: str = ""
    flow_context: int = 0  # frames the flow looks at on each side of a frame


def _decoder_input(graph) -> str:
    """The tensor that feeds the decoder's first convolution ("/dec/conv_pre")."""
    for node in graph.node:
        if node.op_type == "Conv" and node.name.startswith("/dec/") and "conv_pre" in node.name:
            return node.input[0]
    raise ValueError("no /dec/conv_pre convolution: not a VITS graph this code can split")


def _flow_cut(graph, latent: str) -> dict | None:
    """Names of the flow's inputs and its receptive field, or None when there is no flow
    this code recognises ("/flow/" nodes ending in a Mul by the frame mask)."""
    flow_nodes = [n for n in graph.node if n.name.startswith("/flow/")]
    last = next((n for n in graph.node if latent in n.output), None)
    if not flow_nodes or last is None or last.op_type != "Mul":
        return None
    masks = [i for i in last.input if not i.startswith("/flow/")]
    if len(masks) != 1:
        return None
    # The flow's convolutions run one after another, each seeing (kernel - 1) / 2 *
    # dilation frames on either side; the sum is how far the whole flow looks.
    context = 0
    for node in flow_nodes:
        if node.op_type == "Conv":
            attributes = {a.name: a for a in node.attribute}
            kernel = attributes["kernel_shape"].ints[-1]
            dilation = attributes["dilations"].ints[-1] if "dilations" in attributes else 1
            context += (kernel - 1) // 2 * dilation
    return {"prior": flow_nodes[0].input[0], "mask": masks[0], "flow_context": context}


def _cut(model_path: Path, out_dir: Path) -> None:
    import onnx  # only needed once per voice, so imported here
    import onnx.utils

    model = onnx.load(str(model_path))
    latent = _decoder_input(model.graph)
    flow = _flow_cut(model.graph, latent)
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    del model
    onnx.utils.extract_model(str(model_path), str(out_dir / "front.onnx"), inputs, [latent])
    onnx.utils.extract_model(str(model_path), str(out_dir / "decoder.onnx"), [latent], outputs)
    try:
        convs_to_2d(out_dir / "decoder.onnx", out_dir / "decoder.onnx")
    except ValueError as exc:  # an unusual decoder: keep it as it is (slower, same audio)
        log.warning("%s: decoder left with 1-D convolutions: %s", model_path.name, exc)
    names = {"latent": latent}
    front = out_dir / "front.onnx"
    if flow is not None:
        try:
            onnx.utils.extract_model(str(front), str(out_dir / "flow.onnx"),
                                     [flow["prior"], flow["mask"]], [latent])
            onnx.utils.extract_model(str(front), str(out_dir / "prior.onnx"), inputs,
                                     [flow["prior"], flow["mask"]])
        except Exception as exc:  # e.g. a multi-speaker flow that also needs the speaker
            log.warning("%s: flow not cut out: %s", model_path.name, exc)
            (out_dir / "flow.onnx").unlink(missing_ok=True)
            (out_dir / "prior.onnx").unlink(missing_ok=True)
            flow = None
    if flow is None:
        log.warning("%s: the first window waits for the flow over the whole sentence",
                    model_path.name)
    else:
        front.unlink()
        names.update(flow)
    (out_dir / "names.json").write_text(json.dumps(names), encoding="utf-8")


def split_voice(model_path: Path, model_id: str | None = None) -> SplitVoice:
    """The parts of ``model_path``, cut on first use; raises if it cannot be cut.

    Cached by the model store's conversion cache (rebuilt when the voice file changes).
    """

    model_path = Path(model_path)
    folder = converted(model_id or f"piper-{model_path.stem}", CONVERSION_NAME, [model_path],
                       functools.partial(_cut, model_path), version=SPLIT_VERSION)
    names = json.loads((folder / "names.json").read_text(encoding="utf-8"))
    if "prior" not in names:
        return SplitVoice(folder / "front.onnx", folder / "decoder.onnx", names["latent"])
    return SplitVoice(folder / "prior.onnx", folder / "decoder.onnx", names["latent"],
                      folder / "flow.onnx", names["prior"], names["mask"],
                      int(names["flow_context"]))
