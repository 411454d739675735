"""Load a chat model by catalog id or folder, on the best backend for this machine.

    model = load_chat_model()                      # the embedded default (ChatSettings())
    model = load_chat_model("qwen2.5-0.5b-instruct", backend="torch")
    model = load_chat_model(Path("~/my-model"))    # any transformers causal-LM folder

Backends ("auto" picks the first that applies):
- "torch" on CUDA, bfloat16 or float16: whenever torch sees a GPU;
- "onnx": the CPU fast path, for Llama-style models (see ``onnx_export``);
- "torch" on the CPU in float32: any other causal LM.

The CPU ONNX path imports neither torch nor transformers once the export is cached: they
would add ~700 MB to the conversation process for nothing. Its config comes from
config.json as plain JSON, its tokenizer from ``tokenizer_file``, and the GPU probe only
imports torch where a GPU driver is present.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from voicebot.lm.chat import LocalChatModel
from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.onnx_export import unsupported_reason
from voicebot.lm.torch_backend import TorchBackend
from voicebot.models import resolve
from voicebot.settings import ChatSettings

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
# Names that transformers' configs give the longest sequence (its attribute maps):
# GPT-2 style configs say n_positions, a few others their own word.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "context_length",
                 "model_max_length")
# Device files of a GPU driver torch could use: NVIDIA, AMD ROCm, WSL2's GPU bridge.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def model_folder(model: str | Path) -> tuple[Path, str | None]:
    """(folder to load, catalog id or None) for a catalog id or a local folder."""
    path = Path(model).expanduser()
    if isinstance(model, Path) or path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a transformers model folder "
                                    "(no config.json)")
        return path.resolve(), None

    return resolve(str(model)), str(model)


def read_config(folder: Path) -> SimpleNamespace:
    """The model's config.json as attributes, for the checks that need no model class;
    transformers' AutoConfig would import torch."""
    return SimpleNamespace(**json.loads((folder / "config.json").read_text("utf-8")))


def _gpu_driver_present() -> bool:
    """False where torch certainly sees no GPU, found without importing it (~700 MB)."""
    if sys.platform == "darwin":  # torch has no CUDA builds for macOS
        return False
    if sys.platform.startswith("linux"):
        return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)
    if sys.platform == "win32":
        system = Path(os.environ.get("SYSTEMROOT", r"C:\Windows"), "System32")
        return (system / "nvcuda.dll").is_file()
    return True  # elsewhere only torch can tell


def cuda_available() -> bool:
    """True when torch can use a GPU here; without a GPU driver, torch is not imported."""
    if not _gpu_driver_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def choose_backend(folder: Path, backend: str = "auto", device: str = "auto") -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        if backend == "onnx" and device.startswith("cuda"):
            raise ValueError("the ONNX backend runs on the CPU; use backend 'torch' for CUDA")
        return backend
    if device.startswith("cuda") or (device == "auto" and cuda_available()):
        return "torch"
    reason = unsupported_reason(read_config(folder))
    if reason:
        log.info("chat model runs on torch (CPU): no ONNX fast path because %s", reason)
        return "torch"
    return "onnx"


def load_backend(folder: Path, model_id: str | None, backend: str, device: str = "auto",
                 threads: int | None = None, context_tokens: int = 2048) -> Any:
    if backend == "onnx":
        from voicebot.lm.onnx_backend import OnnxBackend, exported_decoder

        return OnnxBackend(exported_decoder(folder, model_id), threads=threads,
                           capacity=context_tokens)

    return TorchBackend(folder, device="cpu" if device == "auto" and backend == "torch"
                        and not cuda_available() else device, threads=threads,
                        capacity=context_tokens)


def load_chat_model(model: str | Path | None = None, *, system_prompt: str | None = None,
                    max_reply_tokens: int | None = None, context_tokens: int | None = None,
                    backend: str = "auto", device: str = "auto", threads: int | None = None,
                    options: GenerationOptions | None = None,
                    warm_up: bool = True) -> LocalChatModel:
    """A ready chat model; unset arguments take the product defaults (``ChatSettings()``).

    The user's choices reach it as arguments from the top layers (the session, the CLI
    entry points): an engine never reads the settings file itself.
    """
    chat = ChatSettings()
    folder, model_id = model_folder(model if model is not None else chat.model)
    chosen = choose_backend(folder, backend, device)
    context_tokens = min(context_tokens or chat.context_tokens, _max_context(folder))
    engine = load_backend(folder, model_id, chosen, device, threads, context_tokens)
    tokenizer = load_tokenizer(folder, chosen)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{folder} has no chat template; voicebot needs an instruct/chat model")
    chat_model = LocalChatModel(
        engine, tokenizer,
        system_prompt=chat.system_prompt if system_prompt is None else system_prompt,
        max_reply_tokens=max_reply_tokens or chat.max_reply_tokens,
        context_tokens=context_tokens,
        options=options)
    if warm_up:
        chat_model.warm_up()
    return chat_model


def load_tokenizer(folder: Path, backend: str) -> Any:
    """The model's tokenizer: read from its files on the ONNX path (no transformers, so no
    torch), transformers' own where torch runs the model anyway or the folder has no
    tokenizer.json (a slow, SentencePiece-only tokenizer)."""
    if backend == "onnx" and (folder / "tokenizer.json").is_file():
        from voicebot.lm.tokenizer_file import FileTokenizer

        return FileTokenizer(folder)
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _max_context(folder: Path) -> int:
    config = read_config(folder)
    for key in _CONTEXT_KEYS:
        if getattr(config, key, None):
            return int(getattr(config, key))
    return 1 << 30
