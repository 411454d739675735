"""Choosing tokens and turning them into text, one at a time (GUI-free, numpy only).

Shared by every backend: a backend only turns token ids into next-token logits, so the
sampling rules, the loop guard and the text streaming behave the same on ONNX Runtime,
CPU torch and CUDA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# (tokens generated so far in this reply, next-token logits) -> new logits
LogitsProcessor = Callable[[Sequence[int], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 120
    # 0 means greedy: the same question gets the same answer, which tests and users of a
    # spoken assistant both prefer. Above 0, nucleus sampling with top_p.
    temperature: float = 0.0
    top_p: float = 0.9
    # Small models drift into loops ("fashion, fashion, fashion"); a mild penalty on
    # tokens already in the reply stops most of it without hurting the wording.
    repetition_penalty: float = 1.15
    seed: int | None = None
    # Past this fraction of max_new_tokens, the reply ends at the next sentence end: a
    # voice that stops mid-sentence at the hard cap sounds broken. None: only the cap.
    wrap_up_after: float | None = 0.6
    logits_processors: tuple[LogitsProcessor, ...] = field(default_factory=tuple)


def apply_repetition_penalty(logits: np.ndarray, previous: Sequence[int],
                             penalty: float) -> np.ndarray:
    """Make tokens already used less likely (divide positive logits, multiply negative)."""
    if penalty == 1.0 or not previous:
        return logits
    used = np.unique(np.asarray(previous, dtype=np.int64))
    values = logits[used]
    logits[used] = np.where(values > 0, values / penalty, values * penalty)
    return logits


def choose_token(logits: np.ndarray, generated: Sequence[int], options: GenerationOptions,
                 rng: np.random.Generator) -> int:
    """The next token from one row of logits (float32, vocabulary-sized)."""
    logits = np.array(logits, dtype=np.float32, copy=True)
    for process in options.logits_processors:
        logits = process(generated, logits)
    logits = apply_repetition_penalty(logits, generated, options.repetition_penalty)
    if options.temperature <= 0:
        return int(np.argmax(logits))
    scaled = logits / options.temperature
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    order = np.argsort(-probs)
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, options.top_p)) + 1]
    kept = probs[keep] / probs[keep].sum()
    return int(rng.choice(keep, p=kept))


class LoopGuard:
    """Notices when the reply repeats the same few tokens over and over.

    A loop is the last ``period`` tokens repeated ``times`` times in a row, for any period
    up to ``max_period``: "fashion, fashion, fashion, fashion" (period 2) or a whole
    sentence said three times.
    """

    def __init__(self, max_period: int = 40, times: int = 3, min_tokens: int = 8):
        self.max_period = max_period
        self.times = times
        self.min_tokens = min_tokens  # single repeated tokens need more copies ("...." )
        self.tokens: list[int] = []

    def push(self, token: int) -> bool:
        """Add a token; True when the reply is looping."""
        self.tokens.append(token)
        tokens = self.tokens
        for period in range(1, self.max_period + 1):
            times = max(self.times, -(-self.min_tokens // period))
            span = period * times
            if span > len(tokens):
                break
            if tokens[-1] != tokens[-1 - period]:
                continue  # the cheap test that rules out almost every period
            tail = tokens[-span:]
            if all(tail[i] == tail[i + period] for i in range(span - period)):
                return True
        return False


class TextStream:
    """Turns token ids into text pieces as they come.

    Decoding token by token breaks multi-byte characters and word-initial spaces, so this
    decodes the whole reply so far and hands out only the new end, holding back a
    trailing replacement character (half of an emoji or an accented letter).
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece = text[len(self.text):] if text.startswith(self.text) else ""
        self.text = text
        return piece
