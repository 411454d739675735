"""Putting a finished folder in place without ever exposing a half-written one."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path


def replace_dir(new: Path, target: Path) -> None:
    """Move the folder ``new`` to ``target``, replacing what is there.

    Renames only (both sit in the same models dir, so on one file system): the old
    folder is renamed aside, the new one renamed in, then the old one deleted. If the
    second rename fails, the old folder is put back.
    """
    new, target = Path(new), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
