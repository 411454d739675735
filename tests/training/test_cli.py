"""``voicebot train TARGET --help``: each target lists its own options, none of another's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.cli import build_parser

OWN = {
    "tts": ["--scratch", "--vocoder", "--base-steps", "--score-every", "--frames-per-step"],
    "base": ["--minutes", "--max-steps", "--out"],
    "asr": ["--rank", "--model", "--max-steps", "--data"],
    "asr-vocab": ["--words", "--no-history", "--data"],
}
FOREIGN = {
    "tts": ["--rank", "--words", "--minutes"],
    "base": ["--rank", "--vocoder", "--data", "--base-steps"],
    "asr": ["--vocoder", "--scratch", "--base-steps", "--words", "--no-preview"],
    "asr-vocab": ["--rank", "--vocoder", "--max-steps"],
}


@pytest.mark.parametrize("target", sorted(OWN))
def test_each_target_prints_its_own_help(target, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["train", target, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: voicebot train {target} " in text
    for option in OWN[target]:
        assert option in text, option
    for option in FOREIGN[target]:
        assert option not in text, option


def test_help_from_the_installed_command():
    """The real entry point, once: ``train asr --help`` used to print the TTS help."""
    run = subprocess.run([sys.executable, "-m", "voicebot", "train", "asr", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "--rank" in run.stdout and "--vocoder" not in run.stdout


def test_an_option_of_another_target_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["train", "asr", "--data", "d", "--out", "o",
                                   "--vocoder", "v.pth"])
    assert stop.value.code == 2
    assert "--vocoder" in capsys.readouterr().err


def test_targets_parse_as_before():
    args = build_parser().parse_args(["train", "tts", "--data", "d", "--out", "o",
                                      "--frames-per-step", "7", "--batch-size", "2"])
    assert (args.target, args.r, args.batch_size, args.score_every) == ("tts", 7, 2, 0)
    args = build_parser().parse_args(["train", "base", "--minutes", "1"])
    assert args.batch_size is None and args.minutes == 1.0  # base picks its own default
    args = build_parser().parse_args(["train", "asr", "--data", "d", "--out", "o"])
    assert (args.rank, args.max_steps, args.model) == (8, None, None)


def test_a_target_is_required(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["train"])
    assert stop.value.code == 2


def _imports(module: str) -> set[str]:
    import voicebot

    path = Path(voicebot.__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_circle_between_the_training_clis():
    assert "voicebot.training.asr_cli" in _imports("voicebot.training.cli")
    assert not {"voicebot.training.cli", "voicebot.training.cli.arguments_ok"} \
        & _imports("voicebot.training.asr_cli")


def test_option_strings_of_a_target():
    from voicebot.training.cli import option_strings

    tts = option_strings("tts")
    assert {"--max-steps", "--base-steps", "--threads"} <= tts and "--rank" not in tts
    assert "--rank" in option_strings("asr")
