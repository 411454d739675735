"""Process-wide memory helpers: give freed heap memory back to the system.

The conversation process holds torch (Whisper), two onnxruntime sessions and a dozen
threads. Its peak resident size (what the user's system sees and ``bench turn`` reports)
was raised less by the models than by memory freed long ago and kept by glibc's malloc:

- glibc serves large blocks with mmap (returned to the system on free) only above a
  threshold that *grows* each time such a block is freed, up to 32 MiB. After loading,
  Whisper's per-utterance tensors (encoder activations, cross-attention keys/values,
  a few MB each) therefore came from the heap, whose freed pages mostly stay resident.
  A fixed threshold keeps them on mmap. Measured on ``bench turn --turn-count 8``
  together with ``release_freed_memory`` after loading: 1752 -> 1545 MB peak.
- Loading leaves freed temporaries (float32 copies before int8 quantisation, the
  silence encoding's activations) in the heap; ``malloc_trim`` returns those pages.

Everything here is a no-op where the C library is not glibc (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h).
M_MMAP_THRESHOLD = -3
# Blocks from 256 KiB up come from mmap. Smaller than a model's tensors and its
# activations, larger than the many small objects Python and the tokenizers allocate
# (those would pay a system call each). Measured: no change in Whisper's CPU time.
MMAP_THRESHOLD_BYTES = 256 * 1024


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


@functools.cache
def limit_heap_retention() -> bool:
    """Serve large allocations from mmap at a fixed threshold (see the module doc).

    Call it once, early (before loading models); later calls do nothing. Returns
    whether the setting took effect.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    log.debug("malloc mmap threshold %d bytes: %s", MMAP_THRESHOLD_BYTES,
              "set" if ok else "refused")
    return ok


def release_freed_memory() -> bool:
    """Collect garbage, then hand the heap's free pages back to the system.

    For after loading models or another big one-off step; it takes milliseconds, so
    not for every call of a hot loop. Returns whether malloc_trim released anything.
    """
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
