"""A cache of converted models: convert once, reuse on every later start.

``converted(model_id, name, source_files, convert_fn)`` returns a folder holding the
output of ``convert_fn(out_dir)``. The folder lives in the user models dir under
``converted/<model_id>/<name>/`` with a marker (``.voicebot-conversion.json``) that
records each source file's path, size, mtime and sha256, plus the converter's
``version``. A later call costs a few ``stat`` calls: it rebuilds only when a source
file changed (its sha256 differs), a source was added or removed, or ``version`` was
bumped (the conversion code changed). The same file at another path (another install
sharing the models dir) counts as unchanged once its sha256 matches.

The output is built in a temporary folder beside the final one and moved into place by
renames, so a crash or a failed conversion never leaves a half-written folder that looks
complete; a lock file keeps two processes from converting the same thing at once.

Used for GGUF -> safetensors here, and meant for any other one-time conversion (e.g. the
ASR engine's CTranslate2 -> transformers Whisper).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from voicebot.models.atomic import file_lock, replace_dir
from voicebot.models.errors import ConversionError
from voicebot.models.hashing import HashCache, file_signature
from voicebot.paths import user_dirs

log = logging.getLogger(__name__)

MARKER = ".voicebot-conversion.json"
CONVERTED_DIR = "converted"


def conversion_dir(model_id: str, name: str, models_dir: Path | None = None) -> Path:
    return (Path(models_dir) if models_dir else user_dirs().models) / CONVERTED_DIR \
        / model_id / name


def converted(model_id: str, name: str, source_files: Sequence[Path],
              convert_fn: Callable[[Path], None], *, version: str | int = "1",
              models_dir: Path | None = None) -> Path:
    """The folder with ``convert_fn``'s output for these sources, built if needed.

    ``convert_fn(out_dir)`` writes the converted model into the (empty, existing) folder
    ``out_dir``; it must not rely on ``out_dir``'s final name.
    """
    models_dir = Path(models_dir) if models_dir else user_dirs().models
    version = str(version)
    target = conversion_dir(model_id, name, models_dir)
    sources = [Path(p).resolve() for p in source_files]
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise ConversionError(f"cannot convert {model_id}: source files missing: "
                              + ", ".join(missing))
    hashes = HashCache(models_dir / ".hash-cache.json")
    if is_current(target, sources, version, hashes):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{name}.lock"):
        if is_current(target, sources, version, hashes):  # another process just built it
            return target
        log.info("converting %s (%s); this happens once", model_id, name)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=target.parent))
        try:
            tmp.chmod(0o755)  # mkdtemp makes it private; a shared models dir needs more
            convert_fn(tmp)
            marker = {
                "model_id": model_id, "name": name, "version": version,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "seconds": round(time.monotonic() - started, 2),
                "sources": [_source_record(p, hashes) for p in sources],
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=2), "utf-8")
            replace_dir(tmp, target)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, (ConversionError, KeyboardInterrupt, SystemExit)):
                raise
            raise ConversionError(f"converting {model_id} ({name}) failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
        log.info("converted %s (%s) in %.1f s", model_id, name, marker["seconds"])
    return target


def is_current(target: Path, sources: Sequence[Path], version: str | int,
               hashes: HashCache | None = None) -> bool:
    """True when ``target`` holds a finished conversion of exactly these sources."""
    try:
        marker = json.loads((Path(target) / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    recorded = marker.get("sources", [])
    if marker.get("version") != str(version) or len(recorded) != len(sources):
        return False
    for path, record in zip(sources, recorded, strict=True):
        try:
            size, mtime = file_signature(path)
        except OSError:
            return False
        if size != record.get("size"):
            return False
        if record.get("path") == str(path) and mtime == record.get("mtime_ns"):
            continue  # unchanged since the conversion: no need to hash
        # Touched (e.g. reinstalled), or the same model from another install of voicebot
        # (a second checkout, the packaged app) that shares this models dir: only the
        # content decides, so two installs do not convert it again in turn.
        digest = hashes.sha256(path) if hashes else None
        if digest != record.get("sha256"):
            return False
    return True


def _source_record(path: Path, hashes: HashCache) -> dict:
    size, mtime = file_signature(path)
    return {"path": str(path), "size": size, "mtime_ns": mtime, "sha256": hashes.sha256(path)}
