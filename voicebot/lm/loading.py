"""Load a chat model by catalog id or folder, on the best backend for this machine.

    model = load_chat_model()                      # the embedded default (ChatSettings())
    model = load_chat_model("qwen2.5-0.5b-instruct", backend="torch")
    model = load_chat_model(Path("~/my-model"))    # any transformers causal-LM folder

Backends ("auto" picks the first that applies):
- "torch" on CUDA, bfloat16 or float16: whenever torch sees a GPU;
- "onnx": the CPU fast path, for Llama-style models (see ``onnx_export``);
- "torch" on the CPU in float32: any other causal LM.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from voicebot.lm.chat import LocalChatModel
from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.onnx_export import unsupported_reason
from voicebot.lm.torch_backend import TorchBackend
from voicebot.models import resolve
from voicebot.settings import ChatSettings

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")


def model_folder(model: str | Path) -> tuple[Path, str | None]:
    """(folder to load, catalog id or None) for a catalog id or a local folder."""
    path = Path(model).expanduser()
    if isinstance(model, Path) or path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is not a transformers model folder "
                                    "(no config.json)")
        return path.resolve(), None

    return resolve(str(model)), str(model)


def _cuda_available() -> bool:
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
    if device.startswith("cuda") or (device == "auto" and _cuda_available()):
        return "torch"
    from transformers import AutoConfig

    reason = unsupported_reason(AutoConfig.from_pretrained(folder))
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
                        and not _cuda_available() else device, threads=threads,
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
    from transformers import AutoTokenizer

    chat = ChatSettings()
    folder, model_id = model_folder(model if model is not None else chat.model)
    chosen = choose_backend(folder, backend, device)
    context_tokens = min(context_tokens or chat.context_tokens, _max_context(folder))
    engine = load_backend(folder, model_id, chosen, device, threads, context_tokens)
    tokenizer = AutoTokenizer.from_pretrained(folder)
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


def _max_context(folder: Path) -> int:
    from transformers import AutoConfig

    return int(getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", 0)
               or 1 << 30)
