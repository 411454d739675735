"""`import` of a model the user has: structure checks and unsafe archives refused."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from voicebot.models import archive
from voicebot.models.errors import InvalidModelError, ModelError, UnsafeArchiveError
from voicebot.models.installed import read_marker

EMPTY_CATALOG = ""


def _vosk_folder(root):
    for rel, data in {"am/final.mdl": b"am", "conf/model.conf": b"conf",
                      "graph/HCLG.fst": b"graph"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("bad_name", ["../evil.txt", "model/../../evil.txt", "/etc/evil",
                                      "C:/evil.txt", "model\\..\\..\\evil.txt"])
def test_zip_with_escaping_paths_is_refused_before_writing(tmp_path, bad_name):
    bundle = _zip(tmp_path / "bad.zip", {"model/am/final.mdl": b"x", bad_name: b"evil"})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError):
        archive.extract(bundle, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()


def test_tar_with_a_symlink_or_traversal_is_refused(tmp_path):
    link_tar = tmp_path / "link.tar.gz"
    with tarfile.open(link_tar, "w:gz") as tf:
        info = tarfile.TarInfo("model/escape")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        archive.extract(link_tar, tmp_path / "a")
    dotdot_tar = tmp_path / "dotdot.tar"
    with tarfile.open(dotdot_tar, "w") as tf:
        data = b"evil"
        info = tarfile.TarInfo("../evil.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeArchiveError, match=r"\.\."):
        archive.extract(dotdot_tar, tmp_path / "b")
    assert not (tmp_path / "evil.txt").exists()


def test_import_refuses_an_unsafe_zip_and_installs_nothing(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    bundle = _zip(tmp_path / "bad.zip", {"m/am/final.mdl": b"x", "../../evil": b"x"})
    with pytest.raises(UnsafeArchiveError):
        store.import_model(bundle, "my-vosk", kind="asr-vosk")
    assert not (store.models_dir / "my-vosk").exists()


def test_import_folder_checks_structure_and_resolves(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    source = _vosk_folder(tmp_path / "vosk-model-mine")
    path = store.import_model(source, "my-vosk", kind="asr-vosk")
    assert store.resolve("my-vosk") == path
    marker = read_marker(path)
    assert marker["origin"] == "import" and "am/final.mdl" in marker["files"]
    rows = {r["id"]: r for r in store.status()}
    assert rows["my-vosk"]["installed"] and rows["my-vosk"]["kind"] == "asr-vosk"
    assert store.verify("my-vosk")["ok"]


def test_import_zip_with_a_top_folder(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    bundle = _zip(tmp_path / "v.zip", {"vosk-x/am/final.mdl": b"am",
                                       "vosk-x/conf/model.conf": b"c",
                                       "vosk-x/graph/HCLG.fst": b"g"})
    path = store.import_model(bundle, "vosk-x", kind="asr-vosk")
    assert (path / "am" / "final.mdl").read_bytes() == b"am"


def test_import_refuses_incomplete_models_and_keeps_the_old_one(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    good = store.import_model(_vosk_folder(tmp_path / "good"), "my-vosk", kind="asr-vosk")
    broken = _vosk_folder(tmp_path / "broken")
    (broken / "am" / "final.mdl").unlink()
    with pytest.raises(InvalidModelError, match=r"am/final\.mdl"):
        store.import_model(broken, "my-vosk", kind="asr-vosk")
    assert (good / "am" / "final.mdl").read_bytes() == b"am"


def test_import_needs_a_kind_for_new_ids(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    with pytest.raises(ModelError, match="--kind"):
        store.import_model(_vosk_folder(tmp_path / "v"), "my-vosk")


def test_import_a_single_voice_file_with_its_config(tmp_path, make_store):
    store = make_store(EMPTY_CATALOG)
    (tmp_path / "me.onnx").write_bytes(b"onnx")
    (tmp_path / "me.onnx.json").write_text("{}")
    path = store.import_model(tmp_path / "me.onnx", "my-voice", kind="tts-onnx-voice")
    assert path.name == "my-voice"
    assert store.resolve("my-voice") == path / "me.onnx"
    assert (path / "me.onnx.json").is_file()


def test_import_under_a_catalog_id_uses_the_users_copy(tmp_path, models_dir):
    from voicebot.models.store import ModelStore

    store = ModelStore()  # the real catalog, a private models dir
    source = _vosk_folder(tmp_path / "vosk-model-small-en-us-0.15")
    (source / "graph" / "HCLG.fst").unlink()
    (source / "graph" / "HCLr.fst").write_bytes(b"hclr")
    (source / "graph" / "Gr.fst").write_bytes(b"gr")
    path = store.import_model(source, "vosk-en-us-small-0.15")
    assert store.resolve("vosk-en-us-small-0.15") == path == models_dir / "vosk-en-us-small-0.15"
    row = next(r for r in store.status() if r["id"] == "vosk-en-us-small-0.15")
    assert row["installed"] and row["origin"] == "import"
    assert store.verify("vosk-en-us-small-0.15")["ok"]


def test_import_cannot_replace_an_embedded_default(tmp_path, models_dir):
    from voicebot.models.store import ModelStore

    with pytest.raises(ModelError, match="Python package"):
        ModelStore().import_model(_vosk_folder(tmp_path / "v"), "vosk-ko")
