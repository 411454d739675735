"""``voicebot models import``: a model the user already has (folder, archive or file).

The source is copied (or safely unpacked) into a staging folder, its structure checked
for its kind, a marker written, and the folder renamed into ``<models>/<id>/``. Archives
with ``../`` or absolute member paths, or links, are refused before anything is written.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from voicebot.models import archive
from voicebot.models.atomic import replace_dir
from voicebot.models.catalog import KINDS, Catalog
from voicebot.models.errors import InvalidModelError, ModelError
from voicebot.models.hashing import HashCache
from voicebot.models.installed import write_marker
from voicebot.models.installer import PARTIAL_DIR
from voicebot.models.validate import check_structure

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def import_model(source: Path, model_id: str, *, models_dir: Path, catalog: Catalog,
                 kind: str | None = None, hashes: HashCache | None = None) -> Path:
    source = Path(source).expanduser()
    if not source.exists():
        raise ModelError(f"cannot import {source}: no such file or folder")
    main = ""
    if model_id in catalog:
        entry = catalog.get(model_id)
        if entry.embedded:
            raise ModelError(f"'{model_id}' comes with a Python package and cannot be "
                             "replaced; import under another id (with --kind)")
        if kind and kind != entry.kind:
            raise ModelError(f"'{model_id}' is a {entry.kind} model in the catalog, "
                             f"not {kind}")
        kind, main = entry.kind, entry.main
        required = [f.path for f in entry.files]
    else:
        if not _ID_RE.match(model_id):
            raise ModelError(f"model id '{model_id}' must be lower-case letters, digits, "
                             "'.', '_' or '-'")
        if not kind:
            raise ModelError(f"'{model_id}' is not in the catalog: say what it is with "
                             f"--kind ({', '.join(KINDS)})")
        if kind not in KINDS:
            raise ModelError(f"unknown kind '{kind}'; one of {', '.join(KINDS)}")
        required = []

    work_parent = Path(models_dir) / PARTIAL_DIR
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"import-{model_id}-", dir=work_parent))
    try:
        if source.is_dir():
            root = work / "model"
            shutil.copytree(source, root)
        elif archive.is_archive(source):
            try:
                archive.extract(source, work / "unpacked")
            except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
                raise InvalidModelError(f"cannot read the archive {source}: {exc}") from None
            root = archive.single_top_folder(work / "unpacked")
        else:
            root, main = _single_file(source, work / "model")
        check_structure(kind, root)
        missing = [rel for rel in required if not (root / rel).is_file()]
        if missing:
            raise InvalidModelError(f"{source} lacks files the catalog's {model_id} has: "
                                    + ", ".join(missing))
        write_marker(root, model_id=model_id, kind=kind, origin="import",
                     source=f"import:{source.resolve()}", main=main, hashes=hashes)
        target = Path(models_dir) / model_id
        replace_dir(root, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _single_file(source: Path, folder: Path) -> tuple[Path, str]:
    """A lone model file (a .gguf, an .onnx voice with its .onnx.json beside it)."""
    folder.mkdir(parents=True)
    shutil.copy2(source, folder / source.name)
    config = source.with_name(source.name + ".json")
    if config.is_file():
        shutil.copy2(config, folder / config.name)
    return folder, source.name
