"""Where a turn's time went.

Every turn stamps the moments that matter with one monotonic clock; the breakdown the UI
and the turn benchmark show is derived from those stamps, never stored twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The moments of a spoken turn, in the order they normally happen.
MOMENTS = (
    "ptt_release",       # the user let go of the talk button (or VAD said the turn ended)
    "final_transcript",  # the rescored n-best is decided
    "first_token",       # the chat model produced its first piece of text
    "first_clause",      # the first speakable clause went to the synthesizer
    "first_audio",       # the synthesizer produced its first audio chunk
    "first_played",      # the first reply sample reached the output device
    "reply_done",        # the last reply sample was played (or the turn was cancelled)
)

# Stage name -> (from moment, to moment).
STAGES = {
    "asr_ms": ("ptt_release", "final_transcript"),
    "lm_first_token_ms": ("final_transcript", "first_token"),
    "first_clause_ms": ("first_token", "first_clause"),
    "tts_first_audio_ms": ("first_clause", "first_audio"),
    "playback_start_ms": ("first_audio", "first_played"),
    "voice_to_voice_ms": ("ptt_release", "first_played"),
    # Typed turns have no release: their latency starts when the text is submitted.
    "reply_ms": ("final_transcript", "first_played"),
}


def now() -> float:
    """The clock every stamp uses: time.monotonic(), the clock the audio player reports in."""
    return time.monotonic()


@dataclass
class TurnTiming:
    stamps: dict[str, float] = field(default_factory=dict)

    def mark(self, moment: str, at: float | None = None) -> bool:
        """Record a moment the first time it happens; later calls are ignored."""
        if moment not in MOMENTS:
            raise ValueError(f"unknown moment {moment!r}")
        if moment in self.stamps:
            return False
        self.stamps[moment] = now() if at is None else at
        return True

    def elapsed_ms(self, start: str, end: str) -> float | None:
        if start in self.stamps and end in self.stamps:
            return (self.stamps[end] - self.stamps[start]) * 1000.0
        return None

    def breakdown(self) -> dict[str, float]:
        """The stages whose both ends were stamped, in milliseconds."""
        result = {}
        for name, (start, end) in STAGES.items():
            value = self.elapsed_ms(start, end)
            if value is not None:
                result[name] = round(value, 1)
        return result
