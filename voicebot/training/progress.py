"""The training process's progress protocol: one JSON object per line on stdout.

Every line has ``"event"`` and ``"time"`` (Unix seconds). Events, in the order a run
emits them:

- ``start``: device, precision, world_size, max_steps, start_step, takes, minutes, base
- ``warning``: message (e.g. training from scratch with little data)
- ``step``: step, epoch, losses {name: value}, lr, steps_per_s, samples_per_s, eta_s,
  gpu_mem_mb (CUDA only)
- ``checkpoint``: step, path (training state), model_path (the voice folder to use)
- ``sample``: step, path (a WAV preview synthesised from that checkpoint)
- ``cancelled`` / ``done``: step, checkpoint
- ``error``: message

Readers must ignore unknown events and keys, and lines that are not JSON (a library may
print to stdout): ``parse_line`` returns None for those.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

EVENTS = ("start", "warning", "step", "checkpoint", "sample", "cancelled", "done", "error")
_lock = threading.Lock()


def event(name: str, **fields: Any) -> dict:
    return {"event": name, "time": round(time.time(), 3), **fields}


def emit(name: str, stream: IO[str] | None = None, log_file: IO[str] | None = None,
         **fields: Any) -> dict:
    """Write one event line (flushed at once, so a watcher sees it immediately)."""
    record = event(name, **fields)
    line = json.dumps(record, ensure_ascii=False, allow_nan=False, default=_plain)
    with _lock:
        out = stream or sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except (BrokenPipeError, OSError, ValueError):
            # The watcher went away (the app closed and left training running): keep
            # going; progress.jsonl in the run folder still records every event.
            pass
        if log_file is not None:
            log_file.write(line + "\n")
            log_file.flush()
    return record


def _plain(value: Any) -> Any:
    # numpy / torch scalars
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def parse_line(line: str | bytes) -> dict | None:
    """The event of one stdout line, or None when it is not a protocol line."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("event"), str):
        return None
    return record
