"""A cache of converted models: convert once, reuse on every later start.

``converted(model_id, name, source_files, convert_fn)`` returns a folder holding the
output of ``convert_fn(out_dir)``. The folder lives in the user models dir under
``converted/<model_id>/<name>/`` with a marker (``.voicebot-conversion.json``) that
records each source file's path, size, mtime and sha256, plus the converter's
``version``. A later call costs a few ``stat`` calls: it rebuilds only when a source
file changed (its sha256 differs), a source was added or removed, or ``version`` was
bumped (the conversion code changed). The same file at another path (another install
sharing the models dir) counts as unchanged once its sha256 matches.

The marker also records every output file's size and sha256. A start checks the sizes
(a stat each): a truncated or missing output makes the conversion stale, so it is rebuilt
from its source on that start. ``check(target, full=True)`` hashes every output too
(``voicebot models verify`` and ``doctor`` report a damaged conversion that way).

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
from voicebot.models.hashing import HashCache, file_signature, sha256_file
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
                "outputs": _output_records(tmp),
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
    """True when ``target`` holds a finished, undamaged conversion of exactly these
    sources (outputs checked by size here; ``check`` hashes them)."""
    marker = read_marker(target)
    if marker is None:
        return False
    damaged = output_problems(target, marker)
    if damaged:
        log.warning("conversion %s is damaged (%s); it will be rebuilt", target, damaged[0])
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


def read_marker(target: Path) -> dict | None:
    try:
        marker = json.loads((Path(target) / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def output_problems(target: Path, marker: dict, full: bool = False) -> list[str]:
    """What is wrong with a conversion's output files: missing, another size, or (with
    ``full``) another sha256. A marker from before outputs were recorded has nothing to
    compare against and passes."""
    problems = []
    for name, record in (marker.get("outputs") or {}).items():
        path = Path(target) / name
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if size != record.get("size"):
            problems.append(f"{name} has {size} bytes, expected {record.get('size')}")
        elif full and sha256_file(path) != record.get("sha256"):
            problems.append(f"{name} does not match its sha256")
    return problems


def check(target: Path, full: bool = True) -> list[str]:
    """Problems of one conversion folder (empty: sound)."""
    marker = read_marker(target)
    if marker is None:
        return [f"{target} has no readable {MARKER}"]
    return output_problems(target, marker, full=full)


def all_conversions(models_dir: Path | None = None) -> list[Path]:
    """Every finished conversion folder in the models dir."""
    root = (Path(models_dir) if models_dir else user_dirs().models) / CONVERTED_DIR
    return sorted(p.parent for p in root.glob(f"*/*/{MARKER}"))


def _output_records(folder: Path) -> dict[str, dict]:
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER}


def _source_record(path: Path, hashes: HashCache) -> dict:
    size, mtime = file_signature(path)
    return {"path": str(path), "size": size, "mtime_ns": mtime, "sha256": hashes.sha256(path)}
