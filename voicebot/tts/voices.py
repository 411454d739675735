"""Voice ids -> ready ``Synthesizer`` objects.

A voice is named by a model-store id (``piper-en-us-joe-medium``,
``coqui-tacotron2-ddc-ljspeech``), or by a path: a Piper ``.onnx`` file, or a Tacotron2
checkpoint (a ``.pth`` carrying its config, or a folder holding one) such as the training
tab writes. Tacotron2 voices are spoken through the embedded HiFi-GAN V1 vocoder
``hifigan-v1-universal`` unless another vocoder (a catalog id, a V1 ``.pth.tar`` or a
Coqui HiFi-GAN checkpoint) is given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from voicebot.tts.base import Synthesizer

log = logging.getLogger(__name__)

DEFAULT_VOICE = "piper-en-us-joe-medium"
DEFAULT_VOCODER = "hifigan-v1-universal"
VOICE_KINDS = ("tts-onnx-voice", "tts-tacotron2")


@dataclass(frozen=True)
class VoiceOptions:
    engine: str = "onnx"  # Tacotron2 only: "onnx" or "torch"
    device: str = "auto"  # "auto", "cpu" or "cuda"
    threads: int = 1  # per-stage CPU threads (ARCHITECTURE.md, CPU thread budget)
    vocoder: str | None = None  # Tacotron2 only: vocoder id or checkpoint path
    decoder_precision: str | None = None  # Tacotron2 ONNX: "int4" (CPU default), "int8", "fp32"
    vocoder_precision: str | None = None  # Tacotron2 ONNX, V1 vocoder: "int8" (CPU default), "fp32"
    # Piper: windows decoded at once (None: by device); Tacotron2: 2+ runs the decoder on
    # its own thread beside the vocoder (None: not, see ``parallel_vocoder``).
    parallel_windows: int | None = None


def catalog_voices() -> list[dict]:
    """The voices the model store knows, with whether each is installed."""
    from voicebot.models import ModelStore

    store = ModelStore()
    voices = []
    for model_id in store.ids():
        entry = store.entry(model_id)
        if entry.kind not in VOICE_KINDS:
            continue
        voices.append({"id": model_id, "kind": entry.kind, "language": entry.language,
                       "installed": store.root(model_id) is not None,
                       "description": entry.description})
    return voices


def _resolve(model_id: str) -> Path:
    from voicebot.models import resolve

    return resolve(model_id)


def _kind_of(voice: str) -> tuple[str, Path]:
    """("piper" | "tacotron2", path) for a voice id or path."""
    path = Path(voice).expanduser()
    if path.exists():
        if path.suffix == ".onnx" or (path.is_dir() and any(path.glob("*.onnx.json"))):
            onnx = path if path.suffix == ".onnx" else next(path.glob("*.onnx"))
            return "piper", onnx
        return "tacotron2", path
    from voicebot.models import ModelStore, UnknownModelError

    try:
        entry = ModelStore().entry(voice)
    except UnknownModelError:
        raise UnknownVoiceError(voice) from None
    if entry.kind == "tts-onnx-voice":
        return "piper", _resolve(voice)
    if entry.kind == "tts-tacotron2":
        return "tacotron2", _resolve(voice)
    raise UnknownVoiceError(voice, f"{voice!r} is a {entry.kind} model, not a voice")


class UnknownVoiceError(ValueError):
    def __init__(self, voice: str, message: str | None = None) -> None:
        super().__init__(message or f"unknown voice {voice!r}: give a voice id "
                                    "(voicebot say --list-voices) or a model path")


def parallel_vocoder(parallel_windows: int | None) -> bool:
    """Tacotron2: whether the decoder gets its own thread (see ``VoiceOptions``).

    Off unless asked for: on this 2-core machine under a load of 4-5 (bench tts, V1 int8,
    1 thread each) it made the first audio later (median 266 vs 176 ms wall, 145 vs 89 ms
    of CPU: the decoder runs ahead while the first window renders) for about the same
    rtf (0.67 vs 0.64); it can only help where a second core is really free.
    """
    return parallel_windows is not None and parallel_windows > 1


def vocoder_path(vocoder: str) -> Path:
    """A vocoder id (``hifigan-v1-universal``) or checkpoint path -> its file or folder."""
    path = Path(vocoder).expanduser()
    return path if path.exists() else _resolve(vocoder)


def load_voice(voice: str | None = None, options: VoiceOptions | None = None) -> Synthesizer:
    """A ready voice (models loaded and warmed up); ``None`` means the default voice.

    The user's chosen voice is passed in by the top layers; the engine never reads the
    settings file.
    """
    options = options or VoiceOptions()
    voice = voice or DEFAULT_VOICE
    kind, path = _kind_of(voice)
    if kind == "piper":
        from voicebot.tts.piper import PiperVoice

        voice_id = voice if not Path(voice).expanduser().exists() else None
        return PiperVoice(path, voice_id=voice_id, threads=options.threads,
                          device=options.device, parallel_windows=options.parallel_windows)
    from voicebot.tts.tacotron import TacotronVoice

    vocoder = vocoder_path(options.vocoder or DEFAULT_VOCODER)
    voice_id = voice if not Path(voice).expanduser().exists() else None
    return TacotronVoice.from_checkpoints(path, vocoder, engine=options.engine,
                                          voice_id=voice_id, device=options.device,
                                          threads=options.threads,
                                          decoder_precision=options.decoder_precision,
                                          vocoder_precision=options.vocoder_precision,
                                          parallel_vocoder=parallel_vocoder(
                                              options.parallel_windows))
