"""LoRA adapters for the Whisper recogniser: add, train-time loss, save, merge, load.

An adapter folder is what peft writes (``adapter_config.json`` +
``adapter_model.safetensors``) plus ``voicebot-adapter.json`` naming the catalog model it
was trained on and the CTranslate2 -> transformers converter version of those weights,
so a stale adapter (trained on another model) is never applied to the wrong one.

At load time the adapter is merged into a float32 copy of the base weights and written
once to a conversions cache inside the adapter folder (``.merged/``); ``WhisperModel``
then loads that folder exactly like the plain one, so int8 quantisation on CPU and fp16
on CUDA happen after the merge, and decoding runs at the base model's speed (no extra
LoRA matmuls per token).
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicebot.models.conversions import converted

log = logging.getLogger(__name__)

ADAPTER_META = "voicebot-adapter.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
# Bump when the merge below changes what it writes.
MERGE_VERSION = 1
MERGED_CACHE = ".merged"
# Attention query/value projections of the encoder, the decoder and its cross-attention:
# the usual LoRA targets for Whisper; the encoder ones carry the speaker's acoustics.
DEFAULT_TARGETS = ("q_proj", "v_proj")


class AdapterError(RuntimeError):
    """An adapter folder that cannot be used (missing files, other base model)."""


@dataclass
class AdapterInfo:
    path: Path
    base_model: str
    converter_version: int
    meta: dict


def add_lora(model, rank: int = 8, alpha: float | None = None, dropout: float = 0.05,
             targets: tuple[str, ...] = DEFAULT_TARGETS):
    """Wrap a WhisperForConditionalGeneration with fresh LoRA layers (in place).

    The base weights are frozen; only the LoRA matrices train. peft initialises B to
    zero, so an untrained adapter leaves every output exactly as it was.
    """
    from peft import LoraConfig, get_peft_model

    if rank < 1:
        raise ValueError("LoRA rank must be at least 1")
    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else 2 * rank,
                        lora_dropout=dropout, target_modules=list(targets), bias="none")
    with warnings.catch_warnings():
        # peft asks transformers 5 a deprecated question (is_gradient_checkpointing).
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=".*is_gradient_checkpointing.*")
        return get_peft_model(model, config)


def read_adapter(path: str | Path) -> AdapterInfo:
    path = Path(path)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, ADAPTER_META):
        if not (path / name).is_file():
            raise AdapterError(f"{path} is not a recognition adapter: no {name}")
    try:
        meta = json.loads((path / ADAPTER_META).read_text(encoding="utf-8"))
        return AdapterInfo(path, str(meta["base_model"]), int(meta["converter_version"]), meta)
    except (ValueError, KeyError, TypeError) as exc:
        raise AdapterError(f"{path / ADAPTER_META} is unreadable: {exc}") from exc


def save_adapter(peft_model, path: str | Path, base_model: str, **meta) -> Path:
    """Write the adapter folder (replaced atomically, so a reader never sees half of it)."""
    from voicebot.asr.whisper_convert import CONVERTER_VERSION

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    peft_model.save_pretrained(tmp)
    record = {"base_model": base_model, "converter_version": CONVERTER_VERSION,
              "saved": round(time.time(), 3), **meta}
    (tmp / ADAPTER_META).write_text(json.dumps(record, indent=2), encoding="utf-8")
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)
    return path


def _merge_into(base_dir: Path, adapter_dir: Path, out: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(base_dir, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning,
                                message=".*is_gradient_checkpointing.*")
        merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    # Tokenizer, feature extractor and generation config come from the base folder;
    # save_pretrained then writes the merged weights and config over it.
    for item in base_dir.iterdir():
        if item.is_file() and not item.name.endswith(".safetensors") \
                and not item.name.startswith("."):
            shutil.copy2(item, out / item.name)
    merged.save_pretrained(out)


def merged_model_dir(adapter: str | Path, model_id: str | None = None) -> Path:
    """The transformers folder of ``model_id`` with the adapter merged in (cached)."""
    from voicebot.asr.whisper_convert import CONVERTER_VERSION
    from voicebot.asr.whisper_engine import converted_model_dir

    info = read_adapter(adapter)
    model_id = model_id or info.base_model
    if info.base_model != model_id:
        raise AdapterError(f"the adapter {info.path} was trained on {info.base_model}, "
                           f"not {model_id}")
    if info.converter_version != CONVERTER_VERSION:
        # The weights it was trained on came from another converter version; they
        # should be the same numbers, so apply it but say so.
        log.warning("adapter %s was trained on weights from converter version %s (now %s)",
                    info.path, info.converter_version, CONVERTER_VERSION)
    base_dir = converted_model_dir(model_id)
    sources = [info.path / ADAPTER_WEIGHTS, info.path / ADAPTER_CONFIG,
               base_dir / "model.safetensors"]
    # The merged copy lives inside the adapter folder, so deleting (or retraining) the
    # adapter takes its ~150 MB copy with it instead of leaving it in the models dir.
    return converted(model_id, "merged", sources,
                     functools.partial(_merge_into, base_dir, info.path.resolve()),
                     version=f"{CONVERTER_VERSION}.{MERGE_VERSION}",
                     models_dir=info.path / MERGED_CACHE)


def load_whisper_with_adapter(model_id: str = "whisper-tiny-en", adapter: str | Path | None = None,
                              device: str = "auto", cpu_threads: int = 1):
    """Like ``whisper_engine.load_whisper``, with the adapter merged in when one is given
    (on the CPU the merged model runs as its ONNX export, cached in the adapter folder)."""
    from voicebot.asr.whisper_engine import load_whisper, resolve_device

    if not adapter:
        return load_whisper(model_id, device, cpu_threads)
    return _load_adapted(model_id, str(Path(adapter).resolve()), resolve_device(device),
                         cpu_threads)


@functools.lru_cache(maxsize=2)
def _load_adapted(model_id: str, adapter: str, device: str, cpu_threads: int):
    from voicebot.asr.whisper_engine import runtime_model

    model = runtime_model(merged_model_dir(adapter, model_id), model_id, device, cpu_threads,
                          models_dir=Path(adapter) / MERGED_CACHE)
    model.warm_up()
    return model


# ----------------------------------------------------------------- training forward
def _encoder_states(encoder, mel):
    """Encoder output for log-mels (batch x 80 x frames) of any length, with gradients.

    The same computation as ``WhisperModel._run_encoder`` (which runs under
    inference_mode and so cannot train): training sees the audio exactly as decoding
    does, speech-length encodings followed by the encoded silent rest of the window.
    """
    import torch

    gelu = torch.nn.functional.gelu
    h = gelu(encoder.conv2(gelu(encoder.conv1(mel)))).permute(0, 2, 1)
    h = h + encoder.embed_positions.weight[: h.shape[1]]
    for layer in encoder.layers:
        out = layer(h, None)
        h = out[0] if isinstance(out, tuple) else out
    return encoder.layer_norm(h)


def whisper_loss(wm, audios: list[np.ndarray], token_lists: list[list[int]],
                 language: str = "en"):
    """Mean cross-entropy of the transcripts' tokens (and end-of-text) given the audio.

    ``wm``: a ``WhisperModel`` whose ``model`` carries the LoRA layers. The silent tail
    is encoded by the current (adapted) encoder without gradients: it is what decoding
    will use after the merge, and back-propagating through 1500 positions of silence
    would cost ~10x the speech itself.
    """
    import torch

    from voicebot.asr.whisper_model import SILENCE_LEVEL

    encoder = wm.model.model.encoder
    longest = max(len(a) for a in audios)
    padded = [np.pad(a, (0, longest - len(a))) for a in audios]
    mel = torch.stack([wm.log_mel(a) for a in padded])
    speech = _encoder_states(encoder, mel)
    with torch.no_grad():
        silence = torch.full((1, mel.shape[1], wm.max_frames), SILENCE_LEVEL,
                             device=wm.device)
        tail = _encoder_states(encoder, silence)
    n = speech.shape[1]
    states = torch.cat([speech, tail[:, n:].to(speech.dtype).expand(len(audios), -1, -1)],
                       dim=1)
    prompt = wm.prompt(language)
    width = len(prompt) + max(len(t) for t in token_lists)
    ids = torch.full((len(audios), width), wm.eot, dtype=torch.long)
    labels = torch.full((len(audios), width), -100, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        seq = prompt + tokens
        ids[row, :len(seq)] = torch.tensor(seq)
        # Position i predicts token i + 1: the text tokens, then end-of-text.
        target = [*tokens, wm.eot]
        labels[row, len(prompt) - 1:len(prompt) - 1 + len(target)] = torch.tensor(target)
    ids, labels = ids.to(wm.device), labels.to(wm.device)
    hidden = wm.model.model.decoder(input_ids=ids, encoder_hidden_states=states,
                                    use_cache=False).last_hidden_state
    logits = wm.model.proj_out(hidden).float()
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             labels.reshape(-1), ignore_index=-100)


def text_tokens(wm, text: str) -> list[int]:
    """Whisper's tokens for a transcript (a leading space, as Whisper writes text)."""
    return wm.tokenizer.encode(" " + " ".join(text.split()), add_special_tokens=False)
