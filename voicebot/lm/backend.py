"""What every chat-model backend offers: token ids in, next-token logits out (GUI-free).

A backend keeps the key/value cache of the last sequence it saw. ``start`` reuses the
longest prefix the new prompt shares with it, so in a conversation only the new user
message is computed, not the system prompt and the whole history again: that is most of
the time to first token on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

# Long prompts are computed in chunks so that a cancel is noticed between them.
PREFILL_CHUNK = 64


class CancelToken(Protocol):
    """Anything with ``is_set()``: a threading.Event, or the pipeline's cancel token."""

    def is_set(self) -> bool: ...


class Backend(Protocol):
    name: str  # e.g. "onnxruntime-cpu-int8", "torch-cuda-bfloat16"
    reused_tokens: int  # prompt tokens taken from the cache by the last start()

    def start(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray | None:
        """Make the cache hold exactly ``ids``; the logits after the last one (float32,
        vocabulary-sized), or None when cancelled part way."""
        ...

    def step(self, token: int) -> np.ndarray:
        """Append one token; the logits after it."""
        ...

    def reset(self) -> None:
        """Forget the cache (the next start computes the whole prompt)."""
        ...


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def reusable_prefix(cached: Sequence[int], ids: Sequence[int]) -> int:
    """How many cached tokens a new prompt can keep: at least one token must be computed,
    since the logits after the prompt's last token are what the reply starts from."""
    if not ids:
        raise ValueError("a prompt needs at least one token")
    return min(common_prefix(cached, ids), len(ids) - 1)
