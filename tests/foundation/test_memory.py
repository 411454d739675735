"""voicebot.memory: freed heap memory goes back to the system."""

from __future__ import annotations

import psutil
import pytest

from voicebot import memory

glibc_only = pytest.mark.skipif(not memory.is_glibc(), reason="glibc malloc only")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@glibc_only
def test_release_freed_memory_trims_the_heap():
    # Small blocks come from the heap; freed, their pages stay until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(3000)]
    before_free = _rss_mb()
    del blocks
    memory.release_freed_memory()
    assert _rss_mb() < before_free - 100

