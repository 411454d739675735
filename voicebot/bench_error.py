"""The one error a benchmark raises when it cannot produce its figures.

``voicebot bench`` turns it into one line and exit status 1 (a time budget spent, no
microphone, a training process that failed). Anything else that goes wrong in a
benchmark is a bug and keeps its traceback.
"""

from __future__ import annotations


class BenchUnfinishedError(RuntimeError):
    """The benchmark stopped without its figures; the message says why, in one line."""
