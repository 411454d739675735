"""File hashes, and a cache of them so that checking big unchanged files costs a stat.

Hashing the embedded defaults (about 550 MB) takes seconds; start-up and
``voicebot models prepare`` must not pay that every time. The cache keys each file by
its absolute path, size and modification time: if any of those changed, the file is
hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from voicebot.atomic_write import write_text_atomic

CHUNK = 1 << 20


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if on_bytes:
                on_bytes(len(chunk))
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file: what Hugging Face lists for files not stored in LFS."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def file_signature(path: Path) -> tuple[int, int]:
    """(size, mtime in ns): changes whenever the file is rewritten."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class HashCache:
    """sha256 of files, remembered in a JSON file next to the models."""

    def __init__(self, cache_file: Path):
        self.cache_file = Path(cache_file)
        self._lock = threading.Lock()
        self._entries: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._entries is None:
            try:
                self._entries = json.loads(self.cache_file.read_text("utf-8"))
            except (OSError, ValueError):
                self._entries = {}
        return self._entries

    def cached(self, path: Path) -> str | None:
        """The remembered hash if the file has not changed since, else None."""
        path = Path(path).resolve()
        with self._lock:
            entry = self._load().get(str(path))
        if not entry:
            return None
        try:
            size, mtime = file_signature(path)
        except OSError:
            return None
        if entry.get("size") == size and entry.get("mtime_ns") == mtime:
            return entry.get("sha256")
        return None

    def sha256(self, path: Path) -> str:
        path = Path(path).resolve()
        known = self.cached(path)
        if known:
            return known
        size, mtime = file_signature(path)
        digest = sha256_file(path)
        self.remember(path, digest, size, mtime)
        return digest

    def remember(self, path: Path, digest: str, size: int | None = None,
                 mtime_ns: int | None = None) -> None:
        path = Path(path).resolve()
        if size is None or mtime_ns is None:
            size, mtime_ns = file_signature(path)
        with self._lock:
            self._load()[str(path)] = {"size": size, "mtime_ns": mtime_ns, "sha256": digest}
            self._save()

    def _save(self) -> None:
        # Written through a temporary file so a crash never leaves half a JSON document.
        with contextlib.suppress(OSError):  # a read-only models dir only costs re-hashing
            write_text_atomic(self.cache_file,
                              json.dumps(self._entries, indent=0, sort_keys=True))
