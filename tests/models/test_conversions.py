"""The conversion cache: built once, reused, rebuilt when the source changes."""

from __future__ import annotations

import json
import os

import pytest

from voicebot.models.conversions import MARKER, converted
from voicebot.models.errors import ConversionError


class CountingConverter:
    """A real (tiny) conversion: upper-cases the source into the output folder."""

    def __init__(self, source):
        self.source = source
        self.calls = 0

    def __call__(self, out_dir):
        self.calls += 1
        (out_dir / "out.txt").write_text(self.source.read_text().upper())


def test_built_once_then_reused(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    convert = CountingConverter(source)
    first = converted("m", "upper", [source], convert)
    second = converted("m", "upper", [source], convert)
    assert first == second == models_dir / "converted" / "m" / "upper"
    assert (first / "out.txt").read_text() == "HELLO"
    assert convert.calls == 1
    marker = json.loads((first / MARKER).read_text())
    assert marker["sources"][0]["size"] == 5 and len(marker["sources"][0]["sha256"]) == 64


def test_changed_source_invalidates_the_cache(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    convert = CountingConverter(source)
    out = converted("m", "upper", [source], convert)
    source.write_text("world")
    assert converted("m", "upper", [source], convert) == out
    assert (out / "out.txt").read_text() == "WORLD"
    assert convert.calls == 2


def test_same_size_change_is_caught_by_the_hash(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    convert = CountingConverter(source)
    converted("m", "upper", [source], convert)
    stat = source.stat()
    source.write_text("jello")
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    converted("m", "upper", [source], convert)
    assert convert.calls == 2


def test_touched_but_identical_source_is_not_rebuilt(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    convert = CountingConverter(source)
    converted("m", "upper", [source], convert)
    os.utime(source, ns=(1, 1))
    converted("m", "upper", [source], convert)
    assert convert.calls == 1


def test_version_bump_rebuilds(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    convert = CountingConverter(source)
    converted("m", "upper", [source], convert, version=1)
    converted("m", "upper", [source], convert, version=2)
    assert convert.calls == 2


def test_failed_conversion_leaves_the_previous_output(tmp_path, models_dir):
    source = tmp_path / "src.txt"
    source.write_text("hello")
    out = converted("m", "upper", [source], CountingConverter(source))
    source.write_text("changed")

    def broken(out_dir):
        (out_dir / "half-written").write_text("x")
        raise RuntimeError("converter crashed")

    with pytest.raises(ConversionError, match="converter crashed"):
        converted("m", "upper", [source], broken)
    assert (out / "out.txt").read_text() == "HELLO"
    leftovers = [p.name for p in out.parent.iterdir() if p.name != "upper"
                 and not p.name.endswith(".lock")]
    assert leftovers == []


def test_missing_source_is_a_clear_error(tmp_path, models_dir):
    with pytest.raises(ConversionError, match="source files missing"):
        converted("m", "upper", [tmp_path / "nope"], lambda out: None)


def test_same_model_from_another_install_is_not_rebuilt(tmp_path, models_dir):
    """Two installs of voicebot (a checkout and the packaged app) share the models dir;
    each has its own copy of an embedded model. Identical content is reused, not
    converted again by each in turn."""
    first_install, second_install = tmp_path / "a" / "src.txt", tmp_path / "b" / "src.txt"
    for source in (first_install, second_install):
        source.parent.mkdir()
        source.write_text("hello")
    convert = CountingConverter(first_install)
    out = converted("m", "upper", [first_install], convert)
    assert converted("m", "upper", [second_install], convert) == out
    assert converted("m", "upper", [first_install], convert) == out
    assert convert.calls == 1
    second_install.write_text("jello")  # same size, other content: converted again
    converted("m", "upper", [second_install], CountingConverter(second_install))
    assert (out / "out.txt").read_text() == "JELLO"


def test_damaged_output_is_rebuilt_on_the_next_load(tmp_path, models_dir):
    from voicebot.models.conversions import check

    source = tmp_path / "src.txt"
    source.write_text("hello world")
    convert = CountingConverter(source)
    folder = converted("m", "upper", [source], convert)
    assert check(folder) == []
    (folder / "out.txt").write_text("HELLO")  # truncated, as by a full disk or a crash
    assert check(folder, full=False) == ["out.txt has 5 bytes, expected 11"]
    assert converted("m", "upper", [source], convert) == folder
    assert convert.calls == 2 and (folder / "out.txt").read_text() == "HELLO WORLD"
    assert check(folder) == []


def test_same_size_damage_is_found_by_the_full_check(tmp_path, models_dir):
    from voicebot.models.conversions import check

    source = tmp_path / "src.txt"
    source.write_text("hello")
    folder = converted("m", "upper", [source], CountingConverter(source))
    (folder / "out.txt").write_text("JELLO")
    assert check(folder, full=False) == []  # a start only compares sizes (a stat)
    assert check(folder) == ["out.txt does not match its sha256"]


def test_verify_and_doctor_report_a_damaged_real_conversion(models_dir, capsys):
    """The Piper voice's cut-in-two conversion (a real ONNX model), truncated: ``models
    verify`` fails naming it, ``doctor`` warns, and loading the voice rebuilds it."""
    from voicebot.cli import main
    from voicebot.doctor import check_models
    from voicebot.models import resolve
    from voicebot.tts.piper_split import split_voice

    voice_file = resolve("piper-en-us-joe-medium")
    decoder = split_voice(voice_file, "piper-en-us-joe-medium").decoder
    size = decoder.stat().st_size
    with open(decoder, "r+b") as handle:
        handle.truncate(size // 2)
    code = main(["models", "verify", "piper-en-us-joe-medium", "--json"])
    results = json.loads(capsys.readouterr().out)
    assert code == 1
    damaged = [r for r in results if not r["ok"]]
    assert [r["id"] for r in damaged] == ["piper-en-us-joe-medium (piper-split)"]
    assert f"decoder.onnx has {size // 2} bytes, expected {size}" in damaged[0]["problems"]
    warnings = check_models().get("warnings", [])
    assert any("piper-en-us-joe-medium (piper-split) is damaged" in w for w in warnings)
    assert split_voice(voice_file, "piper-en-us-joe-medium").decoder.stat().st_size == size
    assert main(["models", "verify", "piper-en-us-joe-medium"]) == 0
