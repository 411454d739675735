"""Writing a file so that readers see the old version or the new one, never half of it.

Settings, checkpoints, markers, caches: a crash, a full disk or a kill -9 in the middle of
a write must not leave a file that looks complete. Every write goes to a private
temporary file in the same folder (same file system, so the rename is atomic), is
flushed to disk, and only then renamed over the target; on failure the temporary file is
removed and the old file is untouched.

    with atomic_path(path) as tmp:      # any writer that takes a path (torch.save, np.savez)
        torch.save(state, tmp)
    write_text_atomic(path, text)
    write_json_atomic(path, data)
    copy_atomic(src, dst)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path``; renamed over it when the block succeeds.

    ``suffix`` keeps an extension some writers insist on (``np.savez`` adds ``.npz``
    to a name without it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name the writer creates itself (so the file gets the usual permissions,
    # not mkstemp's owner-only ones: the models dir may be shared).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False))


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
