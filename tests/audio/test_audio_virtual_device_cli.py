import json
import os
import subprocess
import sys

import pytest

from voicebot.audio.virtual_device import pulseaudio_available

pytestmark = [pytest.mark.audio,
              pytest.mark.skipif(not pulseaudio_available(), reason="pulseaudio not installed")]


def test_demo_command_starts_after_a_crash_left_stale_fifos(tmp_path):
    root = tmp_path / "vaudio"
    root.mkdir()
    os.mkfifo(root / "mic.fifo")  # what a killed run leaves behind
    (root / "spk.fifo").write_text("stale")
    result = subprocess.run(
        [sys.executable, "-m", "voicebot.audio.virtual_device", "--seconds", "0.5",
         "--root", str(root), "--record", str(tmp_path / "spoken.wav")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"export PULSE_SERVER='unix:{root / 'native'}'" in result.stdout
    assert (tmp_path / "spoken.wav").exists()


def test_bench_audio_prints_the_promised_numbers():
    # A short run of `voicebot bench audio`; the 60 s run and its targets are for humans.
    result = subprocess.run(
        [sys.executable, "-m", "voicebot", "bench", "audio", "--json", "--audio-duration",
         "3"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("frame_ms_median", "frame_ms_p95", "fps", "input_overflows"):
        assert key in report
    assert report["capture_error"] == ""
    assert report["captured_seconds"] > 2  # audio really flowed through the virtual mic
    assert report["fps"] > 20 and report["frame_ms_median"] > 0
    assert report["torch_model_steps_per_s"] > 0  # the parallel model really ran
