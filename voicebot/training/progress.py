"""The training process's progress protocol: one JSON object per line on stdout.

Every line has ``"event"`` and ``"time"`` (Unix seconds). Events, in the order a run
emits them:

- ``corpus`` (building the base voice only): done, total (sentences spoken by the Piper
  teacher so far / planned), minutes (of speech so far), eta_s (of the synthesis)
- ``start``: device, precision, world_size, max_steps, start_step, takes, minutes, base,
  heldout (takes held out, never trained on), parameters, sizes
- ``warning``: message (e.g. training from scratch with little data)
- ``step``: step, epoch, losses {name: value}, lr, steps_per_s, samples_per_s, eta_s
  (of this phase), total_eta_s (this phase and the fine-tune that follows it),
  align_score (how diagonal the batch's attention is, 0-1; above 0.5 = aligned, see
  ``voicebot.training.alignment``), path_error (tokens between where the attention
  looks and where the Piper teacher said the phoneme was; null without teacher items),
  gpu_mem_mb (CUDA only)
- ``checkpoint``: step, path (training state), model_path (the voice folder to use)
- ``sample``: step, path (a WAV preview synthesised from that checkpoint), vocoder
  ("hifigan (...)" or "griffin-lim")
- ``cancelled`` / ``done``: step, checkpoint
- ``error``: message

Phases: ``voicebot train tts`` may first build the base voice that it fine-tunes
(``voicebot.training.base_voice``; ``voicebot train base`` does only that). Every event
of that build carries ``"phase": "base"`` (its own start ... done, with ``corpus`` events
first), and every event of a fine-tune carries ``"phase": "fine-tune"``. A run started
before phases existed, or with ``--scratch``, has no ``phase`` key.

Readers must ignore unknown events and keys, and lines that are not JSON (a library may
print to stdout): ``parse_line`` returns None for those.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

EVENTS = ("corpus", "start", "warning", "step", "checkpoint", "sample", "cancelled", "done",
          "error")
PHASES = ("base", "fine-tune")
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
