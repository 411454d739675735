"""A fine-tuning run scores itself on its held-out takes and keeps the best checkpoint.

The run is real (``voicebot train tts`` as a child process, the stand-in user's takes,
Whisper and the speaker encoder); its weights are random (``--scratch``, two steps), so
the figures are poor: what is checked is that they are measured on the held-out takes,
reported, and that the voice the run leaves is the checkpoint that scored best.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voicebot.training.heldout import HELDOUT_FILE
from voicebot.training.run_scoring import BEST_FILE, BEST_JSON, LAST_FILE, MODEL_FILE, better


def _scores(wer: float, similarity: float, step: int = 1) -> dict:
    return {"roundtrip_wer": wer, "similarity": similarity, "step": step}


def test_intelligibility_first_then_resemblance():
    assert better(_scores(0.5, 0.5), None)
    assert better(_scores(0.2, 0.5), _scores(0.5, 0.9))  # understood beats resembling
    assert not better(_scores(0.5, 0.99), _scores(0.2, 0.5))
    # Within the tie band (0.05) the voice closer to the user wins.
    assert better(_scores(0.22, 0.8), _scores(0.20, 0.7))
    assert not better(_scores(0.20, 0.7), _scores(0.22, 0.8))


@pytest.fixture(scope="module")
def twenty_takes(tmp_path_factory):
    """20 takes of the stand-in user: every 10th (2 takes) is held out."""
    from voicebot.training.stand_in_user import build_stand_in

    return build_stand_in(tmp_path_factory.mktemp("stand-in-20"), count=20).folder


def test_a_run_scores_itself_and_keeps_the_best_checkpoint(twenty_takes, tmp_path):
    import torch

    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "voicebot", "train", "tts", "--data", str(twenty_takes),
         "--out", str(out), "--scratch", "--max-steps", "2", "--batch-size", "2",
         "--checkpoint-every", "1", "--score-every", "1", "--no-preview", "--threads", "1",
         "--device", "cpu"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    scored = [e for e in events if e["event"] == "scores"]
    assert [e["step"] for e in scored] == [1, 2]
    heldout = json.loads((out / HELDOUT_FILE).read_text())["ids"]
    assert len(heldout) == 2
    for event in scored:
        assert 0.0 <= event["roundtrip_wer"] <= 1.0
        assert -1.0 <= event["similarity"] <= 1.0
        assert event["sentences"] == 2 and event["verdict"]
    latest = json.loads((out / "scores.json").read_text())
    assert latest["step"] == 2 and latest["takes"] == heldout
    best = json.loads((out / BEST_JSON).read_text())
    done = next(e for e in events if e["event"] == "done")
    assert done["best_step"] == best["step"] == scored[-1]["best_step"]
    # The run's voice is the best checkpoint's weights; a later best keeps the last too.
    voice = torch.load(out / MODEL_FILE, map_location="cpu", weights_only=True)
    assert voice["step"] == best["step"]
    assert (out / BEST_FILE).is_file()
    assert (out / LAST_FILE).is_file() == (best["step"] != 2)
