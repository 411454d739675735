"""The completion marker of a model folder in the user models dir.

A folder without a readable marker is not an installed model: the marker is written
last, inside the staging folder, before the folder is renamed into place. It records
where the files came from and every file's size and sha256, which later checks compare
against.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from voicebot.models.hashing import HashCache, sha256_file

MARKER = ".voicebot-model.json"


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(folder) / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("id") else None


def write_marker(folder: Path, *, model_id: str, kind: str, origin: str, source: str,
                 main: str = "", known_hashes: dict[str, str] | None = None,
                 unverified: list[str] | None = None, hashes: HashCache | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file of ``folder`` (reusing hashes already computed) and write the marker."""
    folder = Path(folder)
    known = dict(known_hashes or {})
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER):
        rel = path.relative_to(folder).as_posix()
        digest = known.get(rel) or (hashes.sha256(path) if hashes else sha256_file(path))
        files[rel] = {"size": path.stat().st_size, "sha256": digest}
    marker = {
        "id": model_id, "kind": kind, "origin": origin, "source": source, "main": main,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files, "unverified": sorted(unverified or []), **(extra or {}),
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2), "utf-8")
    return marker
