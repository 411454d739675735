"""Real speech and a real adaptation run, shared by the recognition-adaptation tests.

The dataset is the 10 pocketsphinx-testdata utterances written in the wizard's layout
(LJSpeech: wavs/*.wav at 22.05 kHz + metadata.csv), so training resamples exactly as it
does for the user's takes. ``adaptation_run`` trains a few LoRA steps in a real
``voicebot train asr`` process, cancels it with SIGTERM after its first step and resumes
it to the end: about a minute on a busy 2-core machine, paid once per session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from voicebot.asr.evaluate import pocketsphinx_testdata
from voicebot.paths import MODELS_ENV, user_dirs

TOTAL_STEPS = 3


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    import soundfile as sf

    from voicebot.audio.wav_io import read_wav

    utterances = pocketsphinx_testdata()
    if not utterances:
        pytest.skip("pocketsphinx-testdata is not installed (apt install pocketsphinx-testdata)")
    root = tmp_path_factory.mktemp("asr-dataset")
    (root / "wavs").mkdir()
    rows = []
    for index, utt in enumerate(utterances):
        take = f"take_{index:03d}"
        sf.write(root / "wavs" / f"{take}.wav", read_wav(utt.audio, sample_rate=22050).samples,
                 22050)
        rows.append(f"{take}|{utt.reference}|{utt.reference}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def train_command(data, out, *extra) -> list[str]:
    return [sys.executable, "-m", "voicebot", "train", "asr", "--data", str(data), "--out",
            str(out), "--model", "whisper-tiny-en", "--batch-size", "2", "--threads", "1",
            "--device", "cpu", *extra]


def process_env(home) -> dict:
    return {**os.environ, "VOICEBOT_HOME": str(home), MODELS_ENV: str(user_dirs().models),
            "PYTHONWARNINGS": "ignore"}


def read_events(stream) -> list[dict]:
    from voicebot.training.progress import parse_line

    return [e for e in map(parse_line, stream.splitlines()) if e]


@pytest.fixture(scope="session")
def adaptation_run(dataset, tmp_path_factory):
    """(run folder, events of the cancelled run, events of the resumed run)."""
    from voicebot.training.progress import parse_line

    out = tmp_path_factory.mktemp("asr-run") / "run"
    env = process_env(tmp_path_factory.mktemp("home"))
    proc = subprocess.Popen(train_command(dataset, out, "--max-steps", "50"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first: list[dict] = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        record = parse_line(line)
        if record:
            first.append(record)
            if record["event"] == "step":
                proc.send_signal(signal.SIGTERM)  # cancel: save and exit 0
                break
        if time.monotonic() > deadline:
            break
    rest, err = proc.communicate(timeout=120)
    first += read_events(rest)
    assert proc.returncode == 0, err[-3000:]
    resumed = subprocess.run(train_command(dataset, out, "--resume", "--max-steps",
                                           str(TOTAL_STEPS)),
                             env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return out, first, read_events(resumed.stdout)
