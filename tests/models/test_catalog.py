"""The real catalog parses, and the parser refuses entries that hide missing hashes."""

from __future__ import annotations

import pytest

from voicebot.models.catalog import KINDS, load_catalog
from voicebot.models.errors import ModelError

REQUIRED_IDS = {"whisper-tiny-en", "whisper-base", "smollm2-135m-instruct",
                "piper-en-us-joe-medium", "silero-vad", "pocketsphinx-en-us-lm", "vosk-ko"}


def test_real_catalog_has_the_ids_others_code_against():
    catalog = load_catalog()
    assert set(catalog.ids()) >= REQUIRED_IDS
    kinds = {e.kind for e in catalog}
    assert kinds == set(KINDS)  # every kind has at least one model
    for entry in catalog:
        assert entry.license and entry.description and entry.size_mb > 0
        if entry.source.type == "hf":
            assert entry.source.repo and entry.source.revision


def test_every_unpinned_file_is_declared():
    for entry in load_catalog():
        if entry.unverified_files:
            assert entry.source.verify == "record-on-first-download", entry.id


def _write(tmp_path, body):
    path = tmp_path / "c.toml"
    path.write_text(body)
    return path


def test_missing_hash_without_declaration_is_refused(tmp_path):
    path = _write(tmp_path, '''
[[model]]
id = "x"
kind = "vad"
source = { type = "url" }
files = [{ path = "x.onnx", remote = "http://127.0.0.1/x.onnx" }]
''')
    with pytest.raises(ModelError, match="record-on-first-download"):
        load_catalog(path)


@pytest.mark.parametrize("bad", ['kind = "nope"', 'id = "Bad Id"'])
def test_bad_fields_are_refused(tmp_path, bad):
    fields = {"id": 'id = "x"', "kind": 'kind = "vad"'}
    fields[bad.split(" ")[0]] = bad
    path = _write(tmp_path, f'''
[[model]]
{fields["id"]}
{fields["kind"]}
source = {{ type = "url" }}
files = [{{ path = "x.onnx", sha256 = "{"0" * 64}" }}]
''')
    with pytest.raises(ModelError):
        load_catalog(path)


def test_file_paths_must_stay_inside_the_model_folder(tmp_path):
    path = _write(tmp_path, f'''
[[model]]
id = "x"
kind = "vad"
source = {{ type = "url" }}
files = [{{ path = "../x.onnx", sha256 = "{"0" * 64}" }}]
''')
    with pytest.raises(ModelError, match="relative"):
        load_catalog(path)
