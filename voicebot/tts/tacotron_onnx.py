"""Tacotron2 + HiFi-GAN on onnxruntime: export once, then run the decoder step by step.

Four graphs are exported from the pieces in ``voicebot.tts.tacotron_parts``: encoder,
decoder step (state in, state out), postnet and HiFi-GAN generator (the last two with
their convolutions made 2-D, see ``voicebot.tts.conv_layout``). They are cached in
the model store's conversion cache (``voicebot.models.conversions``), which rebuilds them
when a checkpoint's contents change: the Tacotron2 graphs per voice, the vocoder per
vocoder file (one HiFi-GAN V1 export serves every voice). A V1 vocoder also gets a
static int8 graph (``voicebot.tts.hifigan_v1.quantize_int8``), the CPU default. The
decoder loop binds its state as OrtValues and feeds each step's outputs straight back
as the next step's inputs, so on CUDA the state stays on the GPU; only the frames and
the stop token come to the host.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import warnings
from pathlib import Path

import numpy as np

from voicebot.atomic_write import atomic_path
from voicebot.models.conversions import converted
from voicebot.paths import ensure
from voicebot.tts import onnx_runtime
from voicebot.tts import tacotron_parts as parts
from voicebot.tts.conv_layout import convs_to_2d
from voicebot.tts.mel_v1 import is_v1_audio
from voicebot.tts.tacotron_parts import STATE_NAMES, vocoder_hop

log = logging.getLogger(__name__)

EXPORT_VERSION = "5"  # bump when the exported Tacotron2 graphs change
VOCODER_EXPORT_VERSION = "1"  # bump when the exported vocoder graphs change
# "int8": V1 only, 0.35 s of one core per second of audio against 0.53 for "fp32", with
# the copy-synthesis log-mel error 0.259 against 0.243 (see hifigan_v1.int8_excluded_nodes).
VOCODER_PRECISIONS = ("int8", "fp32")
# The decoder step is a matrix-vector product over ~18 M weights per step: on a CPU it
# is bound by memory bandwidth (72 MB of float32 read per step), and how fast that is
# depends on what else runs (others' work evicts the weights from the shared L3 cache).
# Quantised weights read less:
# - "int4": 4-bit weights in blocks of 32 along the input (MatMulNBits; activations are
#   quantized per block too), 9 MB a step: the CPU default. With random weights its
#   frames follow fp32 more closely than "int8" does (whose activations are quantized
#   per tensor), and it is ~1.2-1.5x faster than "int8";
# - "int8": dynamic int8 quantisation of the MatMuls (per output channel), 18 MB a step;
# - "fp32": the exact graph (used on CUDA, where bandwidth is ample).
DECODER_PRECISIONS = ("int4", "int8", "fp32")
INT4_BLOCK = 32
OPSET = 17
_STEP_INPUTS = ("memory", "prenet_mask_1", "prenet_mask_2", *STATE_NAMES,
                "encoder_outputs", "processed_inputs")
_STEP_OUTPUTS = ("frames", "stop_logit", *(f"next_{n}" for n in STATE_NAMES))


def _conversion_id(prefix: str, file: Path) -> str:
    """A stable id for a checkpoint path (its contents are hashed by the cache)."""
    return f"{prefix}-" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]


def _export(module, args, path: Path, input_names, output_names, dynamic_axes) -> None:
    """Export ``module`` (in eval mode, which the exporter restores afterwards: a wrapper
    left in training mode would switch the shared Coqui modules to training mode)."""
    import torch

    assert not module.training, "export wrappers must be in eval mode"

    # The tracer warns about Python control flow in Coqui's LSTMs and about batch sizes;
    # the graphs are batch-1 by design and checked against torch in the tests.
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes=dynamic_axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_hifigan(generator, path: Path, channels: int = 80) -> Path:
    import torch

    from voicebot.tts.tacotron_parts import VocoderPart

    part = VocoderPart(generator).float().eval()
    _export(part, (torch.randn(1, channels, 20),), path, ["mel"], ["audio"],
            {"mel": {2: "frames"}, "audio": {1: "samples"}})
    convs_to_2d(path, path)  # onnxruntime's 2-D kernels are faster (see conv_layout)
    return path


def export_tacotron2(model, folder: Path) -> dict[str, Path]:
    """Export encoder, decoder step and postnet of ``model`` into ``folder``."""
    import torch

    parts.check_supported(model)
    model = model.float().eval()
    ensure(folder)
    paths = {name: folder / f"{name}.onnx" for name in ("encoder", "decoder_step", "postnet")}
    ids = torch.randint(1, max(2, model.num_chars - 1), (1, 12), dtype=torch.int64)
    _export(parts.EncoderPart(model).eval(), (ids,), paths["encoder"], ["ids"],
            ["encoder_outputs", "processed_inputs"],
            {"ids": {1: "text"}, "encoder_outputs": {1: "text"}, "processed_inputs": {1: "text"}})
    with torch.no_grad():
        encoded, processed = parts.EncoderPart(model).eval()(ids)
    state = parts.initial_state(encoded, model)
    channels = model.decoder.frame_channels
    step_args = (torch.zeros(1, channels), torch.ones(1, 256), torch.ones(1, 256),
                 *(state[n] for n in STATE_NAMES), encoded, processed)
    text_axes = {name: {1: "text"} for name in ("attention_weights", "attention_weights_cum",
                                                "encoder_outputs", "processed_inputs",
                                                "next_attention_weights",
                                                "next_attention_weights_cum")}
    _export(parts.DecoderStep(model).eval(), step_args, paths["decoder_step"], _STEP_INPUTS,
            _STEP_OUTPUTS, text_axes)
    _export(parts.PostnetPart(model).eval(), (torch.randn(1, channels, 30),), paths["postnet"],
            ["decoder_mel"], ["mel"], {"decoder_mel": {2: "frames"}, "mel": {2: "frames"}})
    convs_to_2d(paths["postnet"], paths["postnet"])
    return paths


def quantize_decoder(folder: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = folder / "decoder_step.int8.onnx"
    quantize_dynamic(folder / "decoder_step.onnx", target, weight_type=QuantType.QInt8,
                     per_channel=True, op_types_to_quantize=["MatMul", "Gemm"])
    return target


def quantize_decoder_int4(folder: Path) -> Path:
    """decoder_step.int4.onnx: its weight matrices as 4-bit MatMulNBits blocks."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    target = folder / "decoder_step.int4.onnx"
    model = _gemms_as_matmuls(folder / "decoder_step.onnx")
    config = DefaultWeightOnlyQuantConfig(block_size=INT4_BLOCK, is_symmetric=True,
                                          accuracy_level=4, bits=4)
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=INT4_BLOCK, is_symmetric=True,
                                     accuracy_level=4, algo_config=config)
    quantizer.process()
    with atomic_path(target) as tmp:
        quantizer.model.save_model_to_file(str(tmp), False)
    return target


def _gemms_as_matmuls(path: Path):
    """The graph at ``path`` with each Gemm over constant weights (x @ W.T + b, as torch
    exports Linear and LSTM cells) written as MatMul + Add: the 4-bit quantiser only
    takes MatMuls."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes = []
    for node in graph.node:
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (attributes.get("alpha", 1.0) == 1.0 and attributes.get("beta", 1.0) == 1.0
                 and attributes.get("transA", 0) == 0)
        if node.op_type != "Gemm" or not plain or node.input[1] not in initializers:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(initializers[node.input[1]])
        if attributes.get("transB", 0):
            weight = weight.T
        weight_name = f"{node.input[1]}__matmul"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight),
                                                         weight_name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}__product" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], weight_name], [product],
                                      name=f"{node.name}__matmul"))
        if has_bias:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]],
                                          name=f"{node.name}__bias"))
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _export_all(model, folder: Path) -> None:
    export_tacotron2(model, folder)
    quantize_decoder(folder)
    quantize_decoder_int4(folder)


def _export_vocoder(generator, v1: bool, folder: Path) -> None:
    from voicebot.tts.hifigan_v1 import calibration_mels, quantize_int8

    export_hifigan(generator, folder / "hifigan.onnx")
    if not v1:
        return
    try:
        mels = calibration_mels()
    except Exception:  # no Piper voice to calibrate with: the exact graph still works
        log.warning("no calibration speech for the int8 vocoder; using float32 only",
                    exc_info=True)
        return
    quantize_int8(folder / "hifigan.onnx", folder / "hifigan.int8.onnx", mels)


def exported_vocoder(generator, v1: bool, vocoder_file: Path) -> Path:
    """The folder of the vocoder's ONNX graphs (built once per vocoder file); ``v1``:
    the generator is HiFi-GAN V1 (then an int8 graph is made too)."""

    return converted(_conversion_id("vocoder", vocoder_file), "onnx", [vocoder_file],
                     functools.partial(_export_vocoder, generator, v1),
                     version=VOCODER_EXPORT_VERSION)


class OnnxBackend:
    """The exported graphs on onnxruntime (see ``voicebot.tts.tacotron.Backend``)."""

    def __init__(self, folder: Path, vocoder_folder: Path, *, frame_channels: int,
                 frames_per_step: int, hop: int, device: str = "auto", threads: int = 1,
                 decoder_precision: str | None = None,
                 vocoder_precision: str | None = None) -> None:
        self.frame_channels, self.frames_per_step, self.hop = frame_channels, frames_per_step, hop
        open_ = lambda name: onnx_runtime.session(folder / f"{name}.onnx",  # noqa: E731
                                                  threads=threads, device=device)
        self.encoder = open_("encoder")
        provider = self.encoder.get_providers()[0]
        self.device_type = "cuda" if provider == "CUDAExecutionProvider" else "cpu"
        if decoder_precision is None:
            decoder_precision = "fp32" if self.device_type == "cuda" else "int4"
        if decoder_precision not in DECODER_PRECISIONS:
            raise ValueError(f"decoder_precision must be one of {DECODER_PRECISIONS}")
        self.decoder_precision = decoder_precision
        self.decoder_step = open_("decoder_step" if decoder_precision == "fp32"
                                  else f"decoder_step.{decoder_precision}")
        self.postnet_session = open_("postnet")
        int8_there = (Path(vocoder_folder) / "hifigan.int8.onnx").is_file()
        if vocoder_precision is None:
            vocoder_precision = "int8" if self.device_type == "cpu" and int8_there else "fp32"
        if vocoder_precision not in VOCODER_PRECISIONS or \
                (vocoder_precision == "int8" and not int8_there):
            raise ValueError(f"vocoder_precision {vocoder_precision!r}: this vocoder has "
                             f"{'int8 and ' if int8_there else ''}fp32")
        self.vocoder_precision = vocoder_precision
        self.vocoder = onnx_runtime.session(
            Path(vocoder_folder) / ("hifigan.onnx" if vocoder_precision == "fp32"
                                    else "hifigan.int8.onnx"), threads=threads, device=device)
        self.name = f"onnx-{self.device_type}-{decoder_precision}" + \
            ("-vocoder-int8" if vocoder_precision == "int8" else "")
        self._state: dict = {}
        self._binding = None

    @classmethod
    def from_models(cls, model, generator, tts_checkpoint: Path, vocoder_checkpoint: Path,
                    model_id: str | None = None, vocoder_config=None,
                    **options) -> OnnxBackend:
        """Export (once, cached by the model store's conversion cache) and open.

        ``vocoder_config`` (the Coqui config ``hifigan_v1.load_vocoder`` returns) says
        whether the vocoder is V1 (then an int8 graph is made too); None: not V1.
        """
        from voicebot.tts.coqui_checkpoint import find_checkpoint

        tts_file = find_checkpoint(tts_checkpoint)
        vocoder_file = find_checkpoint(vocoder_checkpoint)
        folder = converted(model_id or _conversion_id("tacotron2", tts_file), "onnx",
                           [tts_file], functools.partial(_export_all, model),
                           version=EXPORT_VERSION)
        v1 = vocoder_config is not None and is_v1_audio(vocoder_config.audio)
        vocoder_folder = exported_vocoder(generator, v1, vocoder_file)
        return cls(folder, vocoder_folder, frame_channels=model.decoder.frame_channels,
                   frames_per_step=model.decoder.r, hop=vocoder_hop(generator), **options)

    def _value(self, array: np.ndarray):
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device_type, 0)

    def start(self, ids: np.ndarray) -> None:
        encoded, processed = self.encoder.run(None, {"ids": ids.reshape(1, -1).astype(np.int64)})
        steps = encoded.shape[1]
        zeros = lambda width: np.zeros((1, width), dtype=np.float32)  # noqa: E731
        query_dim = self.decoder_step.get_inputs()[_STEP_INPUTS.index("query")].shape[1]
        decoder_dim = self.decoder_step.get_inputs()[_STEP_INPUTS.index("decoder_hidden")].shape[1]
        self._state = {
            "query": zeros(query_dim), "attention_cell": zeros(query_dim),
            "decoder_hidden": zeros(decoder_dim), "decoder_cell": zeros(decoder_dim),
            "context": zeros(encoded.shape[2]), "attention_weights": zeros(steps),
            "attention_weights_cum": zeros(steps),
        }
        self._state = {name: self._value(value) for name, value in self._state.items()}
        self._encoded, self._processed = self._value(encoded), self._value(processed)

    def step(self, memory, prenet_masks):
        binding = self.decoder_step.io_binding()
        binding.bind_ortvalue_input("memory", self._value(memory.reshape(1, -1)))
        binding.bind_ortvalue_input("prenet_mask_1", self._value(prenet_masks[0]))
        binding.bind_ortvalue_input("prenet_mask_2", self._value(prenet_masks[1]))
        for name in STATE_NAMES:
            binding.bind_ortvalue_input(name, self._state[name])
        binding.bind_ortvalue_input("encoder_outputs", self._encoded)
        binding.bind_ortvalue_input("processed_inputs", self._processed)
        binding.bind_output("frames", "cpu")
        binding.bind_output("stop_logit", "cpu")
        for name in STATE_NAMES:
            binding.bind_output(f"next_{name}", self.device_type)
        self.decoder_step.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        self._state = dict(zip(STATE_NAMES, outputs[2:], strict=True))
        return outputs[0].numpy().reshape(-1), float(outputs[1].numpy().reshape(-1)[0])

    def postnet(self, mel: np.ndarray) -> np.ndarray:
        return self.postnet_session.run(None, {"decoder_mel": mel[None].astype(np.float32)})[0][0]

    def vocode(self, mel: np.ndarray) -> np.ndarray:
        return self.vocoder.run(None, {"mel": mel[None].astype(np.float32)})[0][0]
