"""Unpacking zip and tar archives without letting them write outside their folder.

Model archives come from the internet or from the user; a member named ``../x`` or
``/etc/x``, or a link pointing elsewhere, is refused before anything is written. Links
and device files are refused outright: no model needs them.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from voicebot.models.errors import UnsafeArchiveError

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(ARCHIVE_SUFFIXES)


def safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or UnsafeArchiveError if it could escape."""
    posix = PurePosixPath(name.replace("\\", "/"))
    windows = PureWindowsPath(name)
    if (not name or posix.is_absolute() or windows.is_absolute() or windows.drive
            or name.startswith(("/", "\\"))):
        raise UnsafeArchiveError(f"refusing archive: member '{name}' has an absolute path")
    if ".." in posix.parts:
        raise UnsafeArchiveError(f"refusing archive: member '{name}' leaves the folder "
                                 "('..' in its path)")
    return posix


def list_members(archive: Path) -> list[str]:
    """Every member name, checked; raises UnsafeArchiveError on the first bad one."""
    archive = Path(archive)
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                safe_member_path(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"refusing archive: member '{info.filename}' "
                                             "is a symbolic link")
            return [info.filename for info in zf.infolist()]
    with tarfile.open(archive) as tf:
        names = []
        for member in tf.getmembers():
            safe_member_path(member.name)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"refusing archive: member '{member.name}' is a "
                                         "link or special file")
            names.append(member.name)
        return names


def extract(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into the new folder ``dest`` after checking every member."""
    archive, dest = Path(archive), Path(dest)
    list_members(archive)  # all-or-nothing: refuse before writing anything
    dest.mkdir(parents=True, exist_ok=False)
    root = dest.resolve()
    if archive.name.lower().endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = _inside(root, info.filename)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                target = _inside(root, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is None:
                    continue
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    return dest


def _inside(root: Path, name: str) -> Path:
    # Checked again on the resolved path: belt and braces against odd separators.
    target = (root / safe_member_path(name)).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"refusing archive: member '{name}' leaves the folder")
    return target


def single_top_folder(folder: Path) -> Path:
    """The folder's only subfolder if that is all it holds (how most archives are made)."""
    entries = [p for p in Path(folder).iterdir() if p.name not in ("__MACOSX", ".DS_Store")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return Path(folder)
