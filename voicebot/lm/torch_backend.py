"""Any transformers causal LM through torch: the CUDA path, and the CPU fallback (GUI-free).

On CUDA the weights run in bfloat16 where the GPU supports it (Ampere and newer) and in
float16 otherwise; on the CPU in float32 (CPU half precision is slower, not faster).
The decode loop is our own (one forward per token) rather than ``generate()``: it lets
every token be checked for cancel and loops, and lets the cache of the previous turn be
reused. On CUDA each decode step replays a captured CUDA graph over a static cache
(``voicebot.lm.cuda_graph``; a small model is launch-bound there), with eager decoding
on a DynamicCache as the fallback and the CPU path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.cancel import CancelToken
from voicebot.lm.backend import prefill, reusable_prefix
from voicebot.lm.cuda_graph import graphed_decoder

log = logging.getLogger(__name__)


def pick_torch_device(device: str = "auto") -> tuple[str, Any]:
    """("cuda" | "cpu", torch dtype) for ``device`` ("auto", "cuda", "cuda:1", "cpu")."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("CUDA was asked for, but torch sees no CUDA device")
        index = torch.device(device).index or 0
        bf16 = torch.cuda.get_device_capability(index)[0] >= 8 and torch.cuda.is_bf16_supported()
        return device, (torch.bfloat16 if bf16 else torch.float16)
    return "cpu", torch.float32


class TorchBackend:
    def __init__(self, model_dir: Path, device: str = "auto", threads: int | None = None,
                 capacity: int = 2048):
        import torch
        from transformers import AutoModelForCausalLM

        self.device, self.dtype = pick_torch_device(device)
        if threads and self.device == "cpu":
            # Process-wide in torch: only set when asked (ARCHITECTURE.md, CPU thread budget).
            torch.set_num_threads(threads)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=self.dtype)
        self.model.to(self.device).eval()
        dtype_name = str(self.dtype).removeprefix("torch.")
        self.name = f"torch-{self.device.split(':')[0]}-{dtype_name}"
        self.reused_tokens = 0
        self._ids: list[int] = []
        self._cache: Any = None
        # On CUDA, decode steps replay a captured graph (see voicebot.lm.cuda_graph).
        self._graphed = None
        if self.device.startswith("cuda"):
            with torch.inference_mode():
                self._graphed = graphed_decoder(self.model, capacity)
            if self._graphed is not None:
                self.name += "-graph"

    def _forward(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        if self._graphed is not None:
            start = len(self._ids)
            if len(ids) == 1 and start > 0:
                logits = self._graphed.step(ids[0], start)
            else:
                logits = self._graphed.forward(ids, start)
            self._ids.extend(ids)
            return logits
        tensor = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        out = self.model(input_ids=tensor, past_key_values=self._cache, use_cache=True,
                         logits_to_keep=1)
        self._cache = out.past_key_values
        self._ids.extend(ids)
        return out.logits[0, -1].float().cpu().numpy()

    def start(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray | None:
        import torch
        from transformers import DynamicCache

        keep = reusable_prefix(self._ids, ids)
        with torch.inference_mode():
            if self._graphed is not None:
                # The static cache needs no crop: slots past ``keep`` are rewritten
                # before they are read, and masked until then.
                del self._ids[keep:]
            elif keep == 0 or self._cache is None:
                self._cache = DynamicCache(config=self.model.config)
                self._ids, keep = [], 0
            elif keep < len(self._ids):
                # A negative count removes that many tokens (transformers 5 accepts only
                # this form; older versions read a positive value as the length to keep).
                self._cache.crop(keep - len(self._ids))
                del self._ids[keep:]
            self.reused_tokens = keep
            return prefill(self._forward, ids, keep, cancel, self.reset)

    def step(self, token: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            try:
                return self._forward([token])
            except BaseException:
                self.reset()
                raise

    def reset(self) -> None:
        self._ids, self._cache = [], None
