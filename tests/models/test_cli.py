"""`voicebot models ...`: the subcommand's own parser and runner, JSON outputs parsed.

The tests build only the ``models`` subcommand (as ``voicebot.cli`` does from its
COMMANDS entry) so they do not depend on every other command importing cleanly.
"""

from __future__ import annotations

import argparse
import json

from voicebot import cli as voicebot_cli
from voicebot.models import cli as models_cli
from voicebot.paths import MODELS_ENV


def main(argv):
    assert argv[0] == "models"
    parser = argparse.ArgumentParser(prog="voicebot models")
    models_cli.add_arguments(parser)
    return models_cli.run(parser.parse_args(argv[1:]))


def run_json(capsys, *argv):
    code = main(["models", *argv, "--json"])
    return code, capsys.readouterr().out


def test_voicebot_cli_routes_models_here():
    _help, add_ref, run_ref = voicebot_cli.COMMANDS["models"]
    assert voicebot_cli._load(add_ref) is models_cli.add_arguments
    assert voicebot_cli._load(run_ref) is models_cli.run


def test_list_json_lists_the_catalog(capsys):
    code, out = run_json(capsys, "list")
    rows = json.loads(out)
    assert code == 0
    ids = {r["id"] for r in rows}
    assert {"whisper-tiny-en", "vosk-en-us-small-0.15", "qwen2.5-0.5b-instruct"} <= ids
    defaults = [r for r in rows if r["default"]]
    assert defaults and all(r["installed"] for r in defaults)


def test_list_filters(capsys):
    _, out = run_json(capsys, "list", "--kind", "vad", "--installed")
    assert [r["id"] for r in json.loads(out)] == ["silero-vad"]


def test_prepare_json_is_ok_and_fast_when_done(capsys):
    code, out = run_json(capsys, "prepare")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert {m["id"] for m in report["models"]} >= {"smollm2-135m-instruct", "vosk-ko"}
    chat = next(m for m in report["models"] if m["id"] == "smollm2-135m-instruct")
    assert chat["action"] == "cached conversion"


def test_prepare_fails_clearly_when_a_default_is_missing(capsys, monkeypatch, tmp_path):
    # An environment where the Silero package cannot be found.
    import voicebot.models.packages as packages

    real = packages.package_dir
    monkeypatch.setattr(packages, "package_dir",
                        lambda module, search_in=None: None if module == "silero_vad"
                        else real(module, search_in))
    code = main(["models", "prepare", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "silero-vad" in err and "silero-vad" in err.split("run: ")[1]


def test_verify_json(capsys):
    code, out = run_json(capsys, "verify", "silero-vad", "pocketsphinx-en-us-lm")
    results = json.loads(out)
    assert code == 0 and [r["ok"] for r in results] == [True, True]


def test_path_of_missing_model_says_what_to_run(capsys):
    code, out = run_json(capsys, "path", "vosk-en-us-small-0.15")
    result = json.loads(out)
    assert code == 1 and not result["ok"]
    assert "run: voicebot models download vosk-en-us-small-0.15" in result["error"]


def test_download_unknown_id_fails_with_the_known_ids(capsys):
    code, out = run_json(capsys, "download", "nope")
    assert code == 1 and "known ids" in json.loads(out)["error"]


def test_import_and_remove_json(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    voice = tmp_path / "me.onnx"
    voice.write_bytes(b"onnx")
    code, out = run_json(capsys, "import", str(voice), "--id", "my-voice", "--kind",
                         "tts-onnx-voice")
    assert code == 1 and "me.onnx.json" in json.loads(out)["error"]
    (tmp_path / "me.onnx.json").write_text("{}")
    code, out = run_json(capsys, "import", str(voice), "--id", "my-voice", "--kind",
                         "tts-onnx-voice")
    assert code == 0 and json.loads(out)["ok"]
    code, out = run_json(capsys, "list", "--installed")
    assert "my-voice" in {r["id"] for r in json.loads(out)}
    code, out = run_json(capsys, "remove", "my-voice")
    assert code == 0 and json.loads(out)["removed"]


def test_download_json_streams_progress_lines(capsys, file_server, tmp_path, monkeypatch):
    payload = b"x" * 300_000
    import hashlib

    file_server.add("/v.onnx", payload)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'''
[[model]]
id = "tiny-vad"
kind = "vad"
language = ""
license = "MIT"
size_mb = 0.3
description = "test"
main = "v.onnx"
source = {{ type = "url" }}
[[model.files]]
path = "v.onnx"
remote = "{file_server.base_url}/v.onnx"
sha256 = "{hashlib.sha256(payload).hexdigest()}"
''')
    import voicebot.models.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "default_catalog_path", lambda: catalog)
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    code, out = run_json(capsys, "download", "tiny-vad")
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert events[-1]["event"] == "done" and events[-1]["path"].endswith("v.onnx")
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"] == len(payload)
