"""The cancel token every long-running stage checks (GUI-free).

A turn, a download or a synthesis call takes anything with ``is_set()``: a
``threading.Event`` is the usual one. Stages check it between units of work (a token,
an audio chunk, a block of a download), so cancelling never interrupts a library call.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CancelToken(Protocol):
    """Anything with ``is_set()``: a ``threading.Event`` or the pipeline's token."""

    def is_set(self) -> bool: ...


def is_cancelled(cancel: CancelToken | None) -> bool:
    return cancel is not None and cancel.is_set()
