"""Process-wide memory helpers: give freed heap memory back to the system.

Loading the engines leaves freed temporaries in glibc's heap (Whisper's float32 weights
before int8 quantisation, the silence encoding's activations, the tokenizers' parsing),
and glibc keeps those pages resident; the process's peak RSS (``bench turn``) then
starts from a higher floor. ``malloc_trim`` returns them.

Tried and left out: a fixed ``M_MMAP_THRESHOLD`` (256 KiB to 32 MiB) kept Whisper's
per-utterance tensors from staying resident (bench turn peak -100 to -200 MB) but made
the final decode's CPU time 120 -> 155-185 ms (fresh pages fault in on every step);
``M_ARENA_MAX=2`` changed nothing measurable.

Everything here is a no-op where the C library is not glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading

log = logging.getLogger(__name__)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError when not glibc
    except (OSError, AttributeError):
        return None
    return libc


def is_glibc() -> bool:
    return _glibc() is not None


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system, without a garbage collection.

    Cheap enough (a few ms) for the end of every conversation turn. Returns whether
    malloc_trim released anything.
    """
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


def release_freed_memory() -> bool:
    """Collect garbage, then hand the heap's free pages back to the system.

    For after loading models or another big one-off step; it takes milliseconds, so
    not for every call of a hot loop. Returns whether malloc_trim released anything.
    """
    # Only the main thread collects. Engines load on worker threads in the app, and a
    # collection there can finalise Qt objects (PySide wrappers of closed widgets) off the
    # GUI thread: seen deadlocked in shiboken's GIL hand-off under QObject's destructor.
    if threading.current_thread() is threading.main_thread():
        gc.collect()
    return trim_heap()
