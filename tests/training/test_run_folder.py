"""The run-folder plumbing both trainers share: lock, stop flag, checkpoints, device."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voicebot.paths import MODELS_ENV, user_dirs
from voicebot.training import run_folder
from voicebot.training.progress import parse_line
from voicebot.training.run_folder import (
    RunFolderError,
    RunLock,
    StopFlag,
    checkpoint_files,
    latest_checkpoint,
    prune_checkpoints,
    refuse_existing_run,
    remove_stale_temps,
    save_atomic,
)

HOLDER = ("import sys, time\nfrom voicebot.training.run_folder import RunLock\n"
          "lock = RunLock(sys.argv[1])\nassert lock.acquire()\n"
          "print('held', flush=True)\ntime.sleep(120)\n")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run until the test ends."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    yield out, proc
    proc.kill()
    proc.wait()


def test_a_lock_held_by_another_process_is_refused_and_dies_with_it(holder):
    out, proc = holder
    mine = RunLock(out)
    assert mine.held_elsewhere()
    started = time.monotonic()
    assert not mine.acquire()  # refused at once, not queued
    assert time.monotonic() - started < 1.0
    with pytest.raises(RunFolderError, match="another training process"), mine:
        pass
    proc.kill()  # kill -9: no clean-up code runs in the holder
    proc.wait()
    assert not mine.held_elsewhere()
    assert mine.acquire() and mine.held and not mine.held_elsewhere()
    # A second lock in this same process is refused too (one trainer per folder).
    assert RunLock(out).held_elsewhere() and not RunLock(out).acquire()
    mine.release()
    assert RunLock(out).acquire()


@pytest.mark.parametrize("target", ["asr", "tts"])
def test_a_second_trainer_on_a_locked_folder_is_refused(holder, tmp_path, target):
    out, _ = holder
    data = tmp_path / "data"
    (data / "wavs").mkdir(parents=True)
    (data / "metadata.csv").write_text("t0|Hello there.|Hello there.\n", encoding="utf-8")
    env = {**os.environ, "VOICEBOT_HOME": str(tmp_path / "home"),
           MODELS_ENV: str(user_dirs().models)}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "voicebot", "train", target, "--data",
                          str(data), "--out", str(out), "--device", "cpu"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    errors = [e for e in map(parse_line, run.stdout.splitlines()) if e and e["event"] == "error"]
    assert errors and "another training process" in errors[0]["message"]
    assert not [e for e in map(parse_line, run.stdout.splitlines())
                if e and e["event"] == "start"]
    assert time.monotonic() - started < 60  # before any model is loaded
    assert not checkpoint_files(out)


def test_stop_flag_is_set_by_sigterm_and_sigint():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            flag = StopFlag().install()
            assert not flag.set
            os.kill(os.getpid(), sig)
            deadline = time.monotonic() + 2
            while not flag.set and time.monotonic() < deadline:
                time.sleep(0.01)
            assert flag.set and flag.signal == sig
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_checkpoints_listed_by_step_newest_readable_wins(tmp_path):
    import torch

    for step in (2, 10, 1):
        save_atomic({"model": {"w": torch.full((2,), float(step))}, "step": step},
                    tmp_path / f"checkpoint_{step}.pth")
    (tmp_path / "checkpoint_x.pth").write_bytes(b"not a step")
    (tmp_path / "model_file.pth").write_bytes(b"not a checkpoint")
    assert [p.name for p in checkpoint_files(tmp_path)] == [
        "checkpoint_1.pth", "checkpoint_2.pth", "checkpoint_10.pth"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic saves leave no temporaries
    # The newest was cut off by kill -9 mid-write: the one before is used.
    newest = tmp_path / "checkpoint_10.pth"
    newest.write_bytes(newest.read_bytes()[:100])
    path, state = latest_checkpoint(tmp_path)
    assert path.name == "checkpoint_2.pth" and state["step"] == 2
    assert torch.equal(state["model"]["w"], torch.full((2,), 2.0))
    # A checkpoint the trainer does not recognise is skipped as well.
    path, state = latest_checkpoint(tmp_path, accept=lambda st: st["step"] < 2)
    assert path.name == "checkpoint_1.pth"
    assert latest_checkpoint(tmp_path / "nothing-here") == (None, None)
    prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in checkpoint_files(tmp_path)] == ["checkpoint_2.pth",
                                                            "checkpoint_10.pth"]


def test_stale_temporaries_removed_and_existing_runs_refused(tmp_path):
    (tmp_path / ".checkpoint_4.pth.tmp").write_bytes(b"half")
    (tmp_path / "checkpoint_3.tmp").write_bytes(b"half, old naming")
    (tmp_path / "keep.txt").write_text("x")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [".checkpoint_4.pth.tmp", "checkpoint_3.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
    refuse_existing_run(tmp_path, resume=False)  # no checkpoint: free
    (tmp_path / "checkpoint_5.pth").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="--resume"):
        refuse_existing_run(tmp_path, resume=False)
    refuse_existing_run(tmp_path, resume=True)


def test_device_pick():
    import torch

    assert run_folder.pick_device("cpu") == torch.device("cpu")
    assert run_folder.pick_device("auto").type == ("cuda" if torch.cuda.is_available()
                                                   else "cpu")
    with pytest.raises(run_folder.DeviceError, match="unknown device"):
        run_folder.pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(run_folder.DeviceError, match="no GPU"):
            run_folder.pick_device("cuda")


def test_tts_trainer_names_stay_compatible():
    """tts_train is switched over later: the names it uses exist with the same shape."""
    for name in ("RunLock", "StopFlag", "checkpoint_files", "latest_checkpoint"):
        assert hasattr(run_folder, name)
    lock = RunLock(Path("/nonexistent-run"))
    assert lock.path.name == ".train.lock"
    assert not lock.held_elsewhere()
    flag = StopFlag()
    assert flag.signal is None and not flag.set
    flag.request()
    assert flag.set and flag.signal == signal.SIGTERM
