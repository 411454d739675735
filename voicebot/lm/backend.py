"""What every chat-model backend offers: token ids in, next-token logits out (GUI-free).

A backend keeps the key/value cache of the last sequence it saw. ``start`` reuses the
longest prefix the new prompt shares with it, so in a conversation only the new user
message is computed, not the system prompt and the whole history again: that is most of
the time to first token on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from voicebot.cancel import CancelToken

# Long prompts are computed in chunks so that a cancel is noticed between them.
PREFILL_CHUNK = 64


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


def prefill(forward: Callable[[Sequence[int]], np.ndarray], ids: Sequence[int], keep: int,
            cancel: CancelToken | None, reset: Callable[[], None]) -> np.ndarray | None:
    """The part of ``start`` every backend shares: ``forward`` the tokens of ``ids`` past
    the ``keep`` reused ones, PREFILL_CHUNK at a time with a cancel check before each
    chunk. The logits after the last token, or None when cancelled (the cache then holds
    what was computed so far). On any error ``reset``: a half-filled cache must not be
    reused."""
    logits = None
    try:
        for begin in range(keep, len(ids), PREFILL_CHUNK):
            if cancel is not None and cancel.is_set():
                return None
            logits = forward(ids[begin:begin + PREFILL_CHUNK])
    except BaseException:
        reset()
        raise
    return logits
