"""A real training process on ten real utterances: progress lines, checkpoints, SIGTERM,
kill -9, --resume, and the result loading as a voice.

The model is Coqui's full-size Tacotron2 (from scratch, r=7 so a step stays short on a
busy 2-core CPU); one thread, batch size 1, a checkpoint every 2 steps.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voicebot.training.progress import EVENTS, parse_line

STEP_ARGS = ["--batch-size", "1", "--frames-per-step", "7", "--scratch", "--threads", "1",
             "--checkpoint-every", "2", "--preview-text", "Ten of clubs."]


class Run:
    """``voicebot train tts`` as a child process, its stdout events read by a thread."""

    def __init__(self, data: Path, out: Path, *extra: str) -> None:
        self.events: list[dict] = []
        self.other_lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicebot", "train", "tts", "--data", str(data),
             "--out", str(out), *STEP_ARGS, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self._stderr: list[str] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True
                         ).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            record = parse_line(line)
            if record is None:
                self.other_lines.append(line)
            else:
                self._queue.put(record)
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                record = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                record = None
            if record is None:
                raise AssertionError(f"no matching event; events: {self.events[-5:]}; "
                                     f"stderr: {''.join(self._stderr)[-2000:]}")
            self.events.append(record)
            if predicate(record):
                return record

    def finish(self, timeout: float = 120.0) -> int:
        code = self.proc.wait(timeout)
        while True:  # drain what is left
            try:
                record = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if record is None:
                break
            self.events.append(record)
        return code

    def named(self, name: str) -> list[dict]:
        return [e for e in self.events if e["event"] == name]


def test_train_cancel_kill_resume_and_use_the_voice(short_dataset, tmp_path):
    out = tmp_path / "run"

    # 1. Start, wait for the first checkpoint and its preview, then cancel (SIGTERM).
    first = Run(short_dataset, out, "--max-steps", "50")
    start = first.wait_for(lambda e: e["event"] == "start")
    assert start["device"] == "cpu" and start["precision"] == "fp32"
    assert start["takes"] == 7 and start["start_step"] == 0 and start["base"] == "scratch"
    sample = first.wait_for(lambda e: e["event"] == "sample")
    first.proc.send_signal(signal.SIGTERM)
    assert first.finish() == 0
    cancelled = first.named("cancelled")
    assert len(cancelled) == 1, first.events[-3:]
    stopped_at = cancelled[0]["step"]
    assert stopped_at >= 2 and Path(cancelled[0]["checkpoint"]).is_file()
    assert first.named("warning") and "scratch" in first.named("warning")[0]["message"]
    steps = first.named("step")
    assert [e["step"] for e in steps] == list(range(1, stopped_at + 1))
    for event in steps:
        assert event["losses"]["loss"] > 0 and event["losses"]["decoder_loss"] > 0
        assert event["steps_per_s"] > 0 and event["eta_s"] > 0 and event["lr"] > 0
        assert event["gpu_mem_mb"] is None  # CPU run
    assert all(e["event"] in EVENTS for e in first.events)
    preview = Path(sample["path"])
    assert preview.is_file() and preview.parent == out / "samples"
    from voicebot.audio.wav_io import read_wav

    assert read_wav(preview).duration > 0.1
    assert not first.other_lines, "only protocol lines on stdout"

    # 2. Resume; after its first checkpoint the process is killed with SIGKILL.
    second = Run(short_dataset, out, "--resume", "--max-steps", "50", "--no-preview")
    resumed = second.wait_for(lambda e: e["event"] == "start")
    assert resumed["start_step"] == stopped_at and resumed["resumed_from"]
    saved = second.wait_for(lambda e: e["event"] == "checkpoint")
    assert saved["step"] == stopped_at + 2
    second.wait_for(lambda e: e["event"] == "step" and e["step"] == stopped_at + 3)
    second.proc.kill()
    assert second.finish() == -signal.SIGKILL

    # 3. Resume again: at most the steps since the last checkpoint are lost. A checkpoint
    #    half-written when the kill came is cleared away.
    half_written = out / f".checkpoint_{stopped_at + 4}.pth.tmp"
    half_written.write_bytes(b"\0" * 1000)
    third = Run(short_dataset, out, "--resume", "--max-steps", str(stopped_at + 3),
                "--no-preview")
    assert third.finish() == 0
    assert third.named("start")[0]["start_step"] == stopped_at + 2
    assert [e["step"] for e in third.named("step")] == [stopped_at + 3]
    done = third.named("done")[0]
    assert done["step"] == stopped_at + 3
    assert len(list(out.glob("checkpoint_*.pth"))) <= 2  # older ones are pruned
    assert not half_written.exists()
    logged = [parse_line(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert [e["event"] for e in logged].count("start") == 3

    # 4. The run folder is a voice.
    import torch

    from voicebot.tts.base import collect
    from voicebot.tts.coqui_checkpoint import read_checkpoint
    from voicebot.tts.random_voice import write_random_voice
    from voicebot.tts.voices import VoiceOptions, load_voice

    state, config = read_checkpoint(out)  # weights_only load, config inside
    assert state["step"] == stopped_at + 3 and config["model"] == "tacotron2"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, vocoder = write_random_voice(tmp_path / "vocoder")
        voice = load_voice(str(out), VoiceOptions(engine="torch", device="cpu",
                                                   vocoder=str(vocoder)))
        voice.max_decoder_steps = 20  # an early model never says when it is done
        audio, rate = collect(voice.stream("Ten of clubs."))
    finally:
        torch.set_num_threads(threads)
    assert rate == 22050 and len(audio) > 0 and np.isfinite(audio).all()

    # 5. Fine-tuning from a base checkpoint (here: this run) into a new folder.
    tuned = tmp_path / "tuned"
    fine = Run(short_dataset, tuned, "--base", str(out), "--max-steps", "1", "--no-preview")
    assert fine.finish() == 0
    start = fine.named("start")[0]
    assert start["base"] == str(out) and start["start_step"] == 0 and start["r"] == 7
    assert not fine.named("warning")  # no from-scratch warning
    assert fine.named("step")[0]["lr"] == pytest.approx(5e-5)
    assert fine.named("done")[0]["step"] == 1 and (tuned / "model_file.pth").is_file()


def test_refuses_to_overwrite_a_run_without_resume(short_dataset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint_4.pth").write_bytes(b"not really")
    run = Run(short_dataset, out, "--max-steps", "1")
    assert run.finish() == 2
    assert "--resume" in run.named("error")[0]["message"]


def test_bad_arguments_fail_fast(tmp_path):
    env = {**os.environ}
    result = subprocess.run([sys.executable, "-m", "voicebot", "train", "tts", "--data",
                             str(tmp_path / "none"), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "not a folder" in result.stderr
    result = subprocess.run([sys.executable, "-m", "voicebot", "train", "tts", "--data",
                             str(tmp_path), "--out", str(tmp_path / "o"), "--max-steps", "0"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "--max-steps" in result.stderr


@pytest.mark.parametrize("line, expected", [
    ('{"event": "step", "step": 3}', {"event": "step", "step": 3}),
    ("Loading model...", None), ("{not json", None), ('{"no_event": 1}', None),
    (b'{"event": "done"}\n', {"event": "done"}),
])
def test_progress_lines_parse(line, expected):
    assert parse_line(line) == expected


@pytest.mark.slow
def test_two_processes_under_torchrun_train_one_model(short_dataset, tmp_path):
    """The multi-GPU path (DistributedDataParallel), run on CPU with the gloo backend."""
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", "29561", "-m", "voicebot",
         "train", "tts", "--data", str(short_dataset), "--out", str(out), "--max-steps", "2",
         "--no-preview", *STEP_ARGS[:-2]],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [e for e in map(parse_line, result.stdout.splitlines()) if e]
    # Only rank 0 reports and writes.
    assert [e["event"] for e in events].count("start") == 1
    assert events[0]["world_size"] == 2
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    assert events[-1]["event"] == "done" and (out / "model_file.pth").is_file()


def test_a_folder_another_trainer_is_writing_is_refused(short_dataset, tmp_path):
    from voicebot.training.tts_train import RunLock

    out = tmp_path / "busy"
    out.mkdir()
    script = ("import time\nfrom voicebot.training.tts_train import RunLock\n"
              f"lock = RunLock({str(out)!r})\nassert lock.acquire()\n"
              "print('held', flush=True)\ntime.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert RunLock(out).held_elsewhere()
        run = Run(short_dataset, out, "--resume", "--max-steps", "1")
        assert run.finish() == 2
        assert "another training process" in run.named("error")[0]["message"]
    finally:
        holder.kill()
        holder.wait(10)
    assert not RunLock(out).held_elsewhere()  # the kernel freed it with the process


@pytest.mark.slow
def test_a_trained_run_speaks_through_the_default_onnx_engine(short_dataset, tmp_path,
                                                              monkeypatch):
    """What "Use this voice" leads to: load_voice with the default (ONNX) engine."""
    out = tmp_path / "run"
    run = Run(short_dataset, out, "--max-steps", "1", "--no-preview")
    assert run.finish() == 0
    monkeypatch.setenv("VOICEBOT_MODELS_DIR", str(tmp_path / "models"))  # the ONNX export
    from voicebot.tts.base import collect
    from voicebot.tts.random_voice import write_random_voice
    from voicebot.tts.voices import VoiceOptions, load_voice

    _, vocoder = write_random_voice(tmp_path / "vocoder")
    voice = load_voice(str(out), VoiceOptions(device="cpu", vocoder=str(vocoder)))
    assert "onnx" in voice.voices()[0].engine
    voice.max_decoder_steps = 20
    audio, rate = collect(voice.stream("Ten of clubs."))
    assert rate == 22050 and len(audio) > 0 and np.isfinite(audio).all()
