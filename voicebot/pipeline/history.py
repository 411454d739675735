"""The conversation history: saved across restarts, exportable as Markdown or JSON."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from voicebot.atomic_write import write_json_atomic
from voicebot.lm.context_policy import restored_messages
from voicebot.paths import user_dirs

log = logging.getLogger(__name__)

# Older turns are dropped from the file beyond this (the chat model sees far fewer).
MAX_SAVED_TURNS = 1000


def load_history(path: Path | None = None) -> list[dict[str, Any]]:
    """Saved turn records, oldest first; an unreadable file is set aside, not fatal."""
    path = path or user_dirs().history_file
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        turns = data["turns"] if isinstance(data, dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise ValueError("no list of turns")
        return turns
    except (OSError, ValueError, KeyError, TypeError) as exc:
        backup = path.with_name(f"{path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(backup)
        log.warning("history file %s unreadable (%s); moved to %s", path, exc, backup.name)
        return []


def save_history(turns: list[dict[str, Any]], path: Path | None = None) -> Path:
    """Write atomically (temp file + rename)."""
    path = path or user_dirs().history_file
    return write_json_atomic(path, {"version": 1, "turns": turns[-MAX_SAVED_TURNS:]}, indent=1)


def messages_from_history(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages (user/assistant) for the model's memory."""
    messages = []
    for turn in turns:
        if turn.get("user") and turn.get("reply"):
            messages += [{"role": "user", "content": turn["user"]},
                         {"role": "assistant", "content": turn["reply"]}]
    return restored_messages(messages)  # trimmed and cleaned like the prompt (lm/)


def export_markdown(turns: list[dict[str, Any]]) -> str:
    lines = ["# Voicebot conversation", ""]
    for turn in turns:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.get("started_at", 0)))
        lines.append(f"**You** ({stamp}): {turn.get('user', '')}")
        lines.append("")
        if turn.get("reply"):
            lines.append(f"**Voicebot**: {turn['reply']}")
            lines.append("")
    return "\n".join(lines)


def export_json(turns: list[dict[str, Any]]) -> str:
    return json.dumps({"version": 1, "turns": turns}, indent=2)
