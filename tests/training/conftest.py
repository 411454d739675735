"""Real speech for the training tests: Debian's pocketsphinx-testdata utterances.

Ten recordings (five LibriVox sentences, five "cards" phrases) with their transcripts,
resampled to 22.05 kHz into an LJSpeech folder once per session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebot.training import sample_data


def real_utterances() -> list[tuple[Path, str]]:
    """(wav path, transcript) of the ten test utterances."""
    return sample_data.utterances()


@pytest.fixture(scope="session")
def utterances():
    if not (sample_data.TESTDATA / "librivox" / "transcription").is_file():
        pytest.skip("needs the Debian package pocketsphinx-testdata")
    items = real_utterances()
    assert len(items) == 10
    return items


@pytest.fixture(scope="session")
def speech(utterances):
    """The first LibriVox sentence at 22.05 kHz (float32)."""
    from voicebot.audio.wav_io import read_wav

    return read_wav(utterances[0][0], sample_rate=22050).samples


@pytest.fixture(scope="session")
def checker():
    from voicebot.training.quality import TakeChecker

    return TakeChecker()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, utterances) -> Path:
    """An LJSpeech folder of the ten utterances at 22.05 kHz."""
    return sample_data.build(tmp_path_factory.mktemp("tiny-ljspeech"))


@pytest.fixture(scope="session")
def short_dataset(tmp_path_factory, utterances) -> Path:
    """The seven utterances of at most 3.6 s: what the training runs use, since a step's
    cost grows with the longest clip and the 2-core test machine is shared."""
    return sample_data.build(tmp_path_factory.mktemp("short-ljspeech"), max_seconds=3.6)


def white_noise(seconds: float, level: float, seed: int = 0, rate: int = 22050) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level, int(seconds * rate))
            .astype(np.float32))
