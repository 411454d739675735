"""Load and save Coqui TTS checkpoints (Tacotron2, HiFi-GAN) that carry their config.

A checkpoint is either a ``.pth`` file whose dict holds ``"config"`` (what Coqui's
trainer and ``save_checkpoint`` below write), or a folder / file with a ``config.json``
beside it (Coqui's released model zips). Weights are read with
``torch.load(weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from voicebot.atomic_write import atomic_path, write_json_atomic
from voicebot.tts.espeak import coqui_phonemizer_in_process

log = logging.getLogger(__name__)

_CHECKPOINT_NAMES = ("model_file.pth", "model.pth", "best_model.pth", "checkpoint.pth")


class CheckpointError(ValueError):
    """The checkpoint is missing, unreadable, or lacks its config."""


def find_checkpoint(path: Path) -> Path:
    """The weights file for ``path`` (a file, or a folder holding one)."""
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in _CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
        candidates = sorted(path.glob("checkpoint_*.pth"),
                            key=lambda p: int("".join(filter(str.isdigit, p.stem)) or 0))
        if candidates:
            return candidates[-1]  # the latest training step
        raise CheckpointError(f"no checkpoint (.pth) in {path}")
    raise CheckpointError(f"checkpoint not found: {path}")


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, config dict) of a checkpoint; the config may come from config.json."""
    file = find_checkpoint(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {file}: {exc}") from exc
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{file} is not a Coqui checkpoint (no 'model' weights)")
    config = state.get("config")
    if config is None:
        config_file = file.parent / "config.json"
        if not config_file.is_file():
            raise CheckpointError(f"{file} carries no config and has no config.json beside it")
        config = json.loads(config_file.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        config = dict(config)
    return state, config


def config_from_dict(data: dict[str, Any]):
    from TTS.config import register_config

    model = data.get("model")
    if not model:
        raise CheckpointError("checkpoint config names no model")
    config = register_config(str(model).lower())()
    config.from_dict(dict(data))
    return config


def setup_tacotron2(config):
    """Coqui's ``setup_model``, with its espeak phonemizer run in-process (40x faster,
    same ids: ``voicebot.tts.espeak.coqui_phonemizer_in_process``)."""
    from TTS.tts.models import setup_model

    model = setup_model(config)
    coqui_phonemizer_in_process(model.tokenizer)
    return model


def load_tacotron2(path: Path):
    """(model in eval mode, config) of a Tacotron2 checkpoint."""
    state, raw_config = read_checkpoint(path)
    if str(raw_config.get("model", "")).lower() != "tacotron2":
        raise CheckpointError(f"{path} holds a {raw_config.get('model')!r} model, not tacotron2")
    config = config_from_dict(raw_config)
    model = setup_tacotron2(config)
    model.load_state_dict(state["model"])
    # Coqui's rule: the reduction rate the model was trained with wins.
    model.decoder.set_r(int(state.get("r", raw_config.get("r", config.r))))
    model.eval()
    return model, config


def load_hifigan(path: Path):
    """(generator in eval mode, without weight norm, config) of a HiFi-GAN checkpoint."""
    from TTS.vocoder.models import setup_generator

    state, raw_config = read_checkpoint(path)
    config = config_from_dict(raw_config)
    if "hifigan" not in str(getattr(config, "generator_model", "")).lower():
        raise CheckpointError(f"{path} is not a HiFi-GAN vocoder "
                              f"(generator {getattr(config, 'generator_model', None)!r})")
    # Only the generator: the discriminators are for training and slow to build.
    generator = setup_generator(config)
    weights = state["model"]
    if any(k.startswith("model_g.") for k in weights):  # a whole-GAN checkpoint
        weights = {k[len("model_g."):]: v for k, v in weights.items() if k.startswith("model_g.")}
    generator.load_state_dict(weights)
    generator.remove_weight_norm()
    generator.eval()
    return generator, config


def save_checkpoint(model, config, folder: Path, **extra: Any) -> Path:
    """Write ``model_file.pth`` (weights + config) and ``config.json`` into ``folder``.

    The layout is Coqui's own, so its ``Synthesizer`` loads the result too.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config_dict = config.to_dict()
    file = folder / "model_file.pth"
    with atomic_path(file) as tmp:
        torch.save({"model": model.state_dict(), "config": config_dict, **extra}, tmp)
    write_json_atomic(folder / "config.json", config_dict)
    return file
