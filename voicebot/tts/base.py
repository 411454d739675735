"""What every voice engine offers: the ``Synthesizer`` protocol and its audio chunks.

The pipeline only knows this protocol. ``stream`` yields audio as soon as each piece of
text is synthesised, so playback starts long before a paragraph is finished, and checks
the cancel token between pieces so barge-in stops it at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from voicebot.cancel import CancelToken


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    engine: str
    language: str
    sample_rate: int


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples in [-1, 1] and the text they speak (for captions and logs)."""

    samples: np.ndarray
    sample_rate: int
    text: str = ""
    # True on the last chunk of a sentence: a natural place to pause or cut.
    end_of_sentence: bool = False
    metadata: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@runtime_checkable
class Synthesizer(Protocol):
    @property
    def sample_rate(self) -> int: ...

    def voices(self) -> list[VoiceInfo]:
        """The voices this engine instance can speak with (usually one)."""
        ...

    def stream(self, text: str, cancel: CancelToken | None = None, *,
               split_first: bool = True) -> Iterator[AudioChunk]:
        """Audio for ``text``, piece by piece; yields nothing for text with nothing to say.

        ``split_first`` cuts the first sentence's first piece short so its audio comes
        sooner (``voicebot.text.split``); a caller that has cut the text already (the
        conversation: its splitter did) passes False.
        """
        ...


def collect(chunks: Iterator[AudioChunk]) -> tuple[np.ndarray, int | None]:
    """Join a stream into one array (for files and tests); (empty, None) if silent."""
    parts, rate = [], None
    for chunk in chunks:
        parts.append(chunk.samples)
        rate = chunk.sample_rate
    if not parts:
        return np.zeros(0, dtype=np.float32), rate
    return np.concatenate(parts).astype(np.float32, copy=False), rate
