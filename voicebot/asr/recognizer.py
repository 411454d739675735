"""The ``Recognizer`` protocol and the results it produces.

A recogniser is used for one utterance at a time, from one worker thread:
``feed`` any number of chunks while the user holds the talk button (each call may return,
and pass to ``on_partial``, a ``Partial``), then ``finish`` for the n-best list, then
``reset`` (``finish`` resets too) for the next utterance. Audio is mono float32 at 16 kHz
(see ``audio_input``).

Scores are natural-log probabilities (higher is better). ``acoustic_score`` is what the
engine gives for the whole hypothesis: Whisper's summed token log-probability, Vosk's
lattice total score scaled to nats. Rescoring (``rescoring.py``) fills ``lm_score`` and
``total_score``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class WordTiming:
    word: str
    start: float  # seconds from the start of the utterance
    end: float
    confidence: float | None = None


@dataclass
class Hypothesis:
    text: str
    acoustic_score: float
    words: list[WordTiming] | None = None  # None when the engine gives no timings
    n_tokens: int = 0  # engine tokens (Whisper BPE tokens, Vosk words)
    lm_score: float | None = None  # natural-log n-gram probability incl. </s>
    total_score: float | None = None  # the log-linear combination used for ranking
    engine_rank: int = 0  # position in the engine's own ranking (0 = its 1-best)
    extras: dict = field(default_factory=dict)  # engine details (no_speech_prob, ...)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Partial:
    """What is known while audio is still coming in."""

    committed: str  # stable: will not change any more in this utterance
    tentative: str  # the latest guess for the rest; may change
    audio_seconds: float  # how much audio the guess is based on

    @property
    def text(self) -> str:
        return " ".join(part for part in (self.committed, self.tentative) if part)


PartialCallback = Callable[[Partial], None]


@runtime_checkable
class Recognizer(Protocol):
    sample_rate: int
    on_partial: PartialCallback | None

    def feed(self, audio: np.ndarray) -> Partial | None:
        """Add 16 kHz mono samples; returns a new partial result when there is one."""
        ...

    def finish(self, nbest: int | None = None) -> list[Hypothesis]:
        """End of utterance: the n-best list, engine's best first; then resets."""
        ...

    def reset(self) -> None:
        """Forget the current utterance."""
        ...
