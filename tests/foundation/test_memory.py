"""voicebot.memory: the allocator settings take effect and freed memory goes back."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from voicebot import memory

glibc_only = pytest.mark.skipif(not memory.is_glibc(), reason="glibc malloc only")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@glibc_only
def test_large_blocks_are_returned_when_freed():
    assert memory.limit_heap_retention()
    assert memory.limit_heap_retention()  # once per process; later calls are harmless
    # Many 1 MB blocks: above the fixed threshold each is its own mapping, unmapped
    # on free, however often blocks of that size were freed before.
    for _ in range(3):
        blocks = [np.ones(2**20 // 8) for _ in range(200)]
        held = _rss_mb()
        del blocks
        assert _rss_mb() < held - 150


@glibc_only
def test_release_freed_memory_trims_the_heap():
    # Small blocks come from the heap; freed, their pages stay until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(3000)]
    before_free = _rss_mb()
    del blocks
    memory.release_freed_memory()
    assert _rss_mb() < before_free - 100

