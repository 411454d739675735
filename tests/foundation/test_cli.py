"""The command line: help, version, doctor, and honest 'not implemented' answers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voicebot import __version__
from voicebot.cli import COMMANDS, EXIT_NOT_IMPLEMENTED, main


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicebot", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unimplemented_commands_say_so_and_fail(capsys):
    pending = [name for name, (_, _, run_ref) in COMMANDS.items() if run_ref is None]
    for name in pending:
        assert main([name]) == EXIT_NOT_IMPLEMENTED
        assert "not implemented" in capsys.readouterr().err


def test_doctor_json_tells_the_truth(voicebot_home):
    result = run_cli("doctor", "--json")
    report = json.loads(result.stdout)
    assert report["python"]["ok"]
    assert report["voicebot_home"] == str(voicebot_home)
    # CI machines have no GPU: torch and onnxruntime must say so rather than pretend.
    torch_info, ort_info = report["torch"], report["onnxruntime"]
    assert torch_info["ok"]
    assert torch_info["cuda_available"] == bool(torch_info["gpus"])
    assert "CPUExecutionProvider" in ort_info["usable_providers"]
    assert ort_info["distributions"] == [d for d in ort_info["distributions"]
                                         if d.startswith("onnxruntime-gpu==")]
    # A CUDA version mismatch between onnxruntime and torch is reported, never hidden.
    same_cuda = ort_info["cuda_build"].split(".")[0] == torch_info["cuda_build"].split(".")[0]
    assert ("warning" in ort_info) != same_cuda
    for name in ("config", "data", "cache", "logs"):
        assert report["dirs"][name]["writable"]
        assert report["dirs"][name]["path"].startswith(str(voicebot_home))
    assert result.returncode == (0 if report["ok"] else 1)


def test_doctor_warns_when_there_is_no_audio_device(monkeypatch, capsys):
    """No microphone and no speaker: the audio line says "warn" and why, never "ok".

    PortAudio cannot be made to see zero devices on a machine that has some (an empty
    ALSA configuration aborts the process), so the device list is the one thing faked.
    """
    import sounddevice as sd

    from voicebot import doctor

    monkeypatch.setattr(sd, "query_devices", lambda: [])
    entry = doctor.check_audio()
    assert entry["input_devices"] == 0 and entry["output_devices"] == 0
    assert len(entry["warnings"]) == 2
    report = {name: {"ok": True} for name in doctor.CHECKS}
    report["audio"] = entry
    report["python"]["version"] = "3"
    report["torch"].update(version="x", gpus=[])
    report["onnxruntime"].update(version="x", usable_providers=["CPUExecutionProvider"])
    report["models"]["models"] = []
    report["dirs"]["data"] = {"path": "/tmp"}
    doctor._print_human(report)
    audio_line = next(line for line in capsys.readouterr().out.splitlines() if " audio " in line)
    assert audio_line.startswith("[warn]") and "no input device" in audio_line


def _budget_spent(args):
    from voicebot.bench_error import BenchUnfinishedError

    raise BenchUnfinishedError("the time budget ran out while the base voice was being built")


def _bug(args):
    raise RuntimeError("a bug in the benchmark")


def test_a_bench_that_cannot_finish_says_why_in_one_line(monkeypatch, capsys):
    # The fault (a training run outliving its time budget) takes an hour to produce.
    from voicebot import bench

    monkeypatch.setitem(bench.BENCHMARKS, "adapt",
                        (bench.BENCHMARKS["adapt"][0], f"{__name__}:_budget_spent"))
    assert main(["bench", "adapt", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("voicebot bench adapt: the time budget ran out while "
                                    "the base voice was being built")


def test_a_bench_with_a_bug_keeps_its_traceback(monkeypatch):
    """Only a benchmark's own "cannot produce the figures" becomes one line: a bug is not
    dressed up as a reason."""
    from voicebot import bench

    monkeypatch.setitem(bench.BENCHMARKS, "adapt",
                        (bench.BENCHMARKS["adapt"][0], f"{__name__}:_bug"))
    with pytest.raises(RuntimeError, match="a bug in the benchmark"):
        main(["bench", "adapt", "--json"])
