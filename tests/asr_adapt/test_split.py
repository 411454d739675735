"""The held-out split and the takes' audio as training reads them."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.training.asr_train import AsrTrainingError, Take, load_takes, split_takes


def _takes(n):
    return [Take(f"t{i}", f"text {i}", np.zeros(16000, np.float32)) for i in range(n)]


def test_every_fifth_take_is_held_out():
    train, heldout = split_takes(_takes(12))
    assert [t.id for t in heldout] == ["t4", "t9"]
    assert len(train) == 10 and not {t.id for t in train} & {t.id for t in heldout}
    assert [t.id for t in split_takes(_takes(12))[1]] == ["t4", "t9"]  # deterministic


def test_few_takes_still_hold_one_out():
    train, heldout = split_takes(_takes(3))
    assert [t.id for t in heldout] == ["t2"] and len(train) == 2
    with pytest.raises(AsrTrainingError, match="at least 2"):
        split_takes(_takes(1))


def test_takes_are_resampled_to_16k(dataset):
    import soundfile as sf

    takes = load_takes(dataset)
    assert len(takes) == 10
    info = sf.info(dataset / "wavs" / f"{takes[0].id}.wav")
    assert info.samplerate == 22050
    assert abs(len(takes[0].audio) / 16000 - info.duration) < 0.01
    assert takes[0].audio.dtype == np.float32
