"""``voicebot train asr`` as the Training tab runs it: a real process on real speech."""

from __future__ import annotations

import json
import subprocess

from tests.asr_adapt.conftest import TOTAL_STEPS, process_env, train_command
from voicebot.asr.lora import ADAPTER_META, read_adapter
from voicebot.training.run_folder import checkpoint_files


def _one(events, name):
    found = [e for e in events if e["event"] == name]
    assert len(found) == 1, (name, [e["event"] for e in events])
    return found[0]


def test_cancel_saves_and_reports_wer(adaptation_run):
    _out, first, _ = adaptation_run
    start = _one(first, "start")
    assert start["task"] == "asr" and start["device"] == "cpu"
    # 10 takes: every 5th is held out.
    assert (start["takes"], start["train_takes"], start["heldout_takes"]) == (10, 8, 2)
    assert start["trainable_params"] > 0
    step = next(e for e in first if e["event"] == "step")
    assert step["losses"]["loss"] > 0 and step["steps_per_s"] > 0
    cancelled = _one(first, "cancelled")
    assert 1 <= cancelled["step"] < 50
    before = next(e for e in first if e["event"] == "eval" and e["which"] == "before")
    assert before["references"] == ["he might even have been made amiable himself",
                                    "eight of spades four of clubs seven of hearts"]
    assert 0 <= before["wer"] < 0.5  # tiny.en gets these mostly right
    assert cancelled["wer_before"] == before["wer"]
    assert isinstance(cancelled["wer_after"], float)


def test_resume_continues_the_step_count(adaptation_run):
    out, first, resumed = adaptation_run
    cancelled_at = _one(first, "cancelled")["step"]
    start = _one(resumed, "start")
    assert start["start_step"] == cancelled_at
    steps = [e["step"] for e in resumed if e["event"] == "step"]
    assert steps == list(range(cancelled_at + 1, TOTAL_STEPS + 1))
    # The before-WER was measured once and carried by the checkpoint.
    assert not [e for e in resumed if e["event"] == "eval" and e["which"] == "before"]
    done = _one(resumed, "done")
    assert done["step"] == TOTAL_STEPS
    assert done["wer_before"] == _one(first, "cancelled")["wer_before"]
    assert 0 <= done["wer_after"] <= 1.5
    assert [p.name for p in checkpoint_files(out)][-1] == f"checkpoint_{TOTAL_STEPS}.pth"
    # progress.jsonl holds both runs' events.
    logged = [json.loads(line)["event"]
              for line in (out / "progress.jsonl").read_text().splitlines()]
    assert logged.count("start") == 2 and logged[-1] == "done"


def test_adapter_folder_names_its_base(adaptation_run):
    _out, _, resumed = adaptation_run
    info = read_adapter(_one(resumed, "done")["model_path"])
    assert info.base_model == "whisper-tiny-en"
    assert info.meta["steps"] == TOTAL_STEPS and info.meta["heldout_takes"] == 2
    assert (info.path / "adapter_config.json").is_file()
    assert (info.path / ADAPTER_META).is_file()


def test_refuses_to_overwrite_a_run_and_bad_data(adaptation_run, dataset, tmp_path):
    out, _, _ = adaptation_run
    env = process_env(tmp_path / "home")
    again = subprocess.run(train_command(dataset, out, "--max-steps", "1"), env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run(train_command(empty, tmp_path / "o"), env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "metadata.csv" in bad.stderr
