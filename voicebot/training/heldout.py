"""Which takes a voice run never trains on: every 10th take, in recording order.

The held-out takes are what a run scores itself on (intelligibility of its sentences,
resemblance to the user's own takes), so they must never reach the optimiser. Taking
every 10th (the 10th, 20th, ...) rather than a random tenth keeps the split the same
when the user records more takes later: old held-out takes stay held out, and the
training UI and the trainer agree without sharing any state.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

EVERY = 10  # about 10% held out, as the voice-adaptation design asks
HELDOUT_FILE = "heldout.json"  # in a run folder: {"every": 10, "ids": [...]}


def is_heldout(position: int) -> bool:
    """True for the take at 0-based ``position`` in metadata order."""
    return position % EVERY == EVERY - 1


def split_heldout(items: list[T]) -> tuple[list[T], list[T]]:
    """(train, held out) of ``items`` in metadata order; fewer than 10 takes hold
    nothing out (there is nothing to spare)."""
    train = [it for i, it in enumerate(items) if not is_heldout(i)]
    held = [it for i, it in enumerate(items) if is_heldout(i)]
    return train, held
