"""Real speech for the training tests: Debian's pocketsphinx-testdata utterances.

Ten recordings (five LibriVox sentences, five "cards" phrases) with their transcripts,
resampled to 22.05 kHz into an LJSpeech folder once per session.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

TESTDATA = Path("/usr/share/pocketsphinx/test/data")
_LINE = re.compile(r"<s>(?P<text>.*)</s>\s*\((?P<id>[^)]+)\)")


def real_utterances() -> list[tuple[Path, str]]:
    """(wav path, transcript) of the ten test utterances."""
    items = []
    for folder, transcripts in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for line in (TESTDATA / folder / transcripts).read_text().splitlines():
            match = _LINE.match(line.strip())
            if match:
                name = Path(match["id"]).name
                items.append((TESTDATA / folder / f"{name}.wav", " ".join(match["text"].split())))
    return items


@pytest.fixture(scope="session")
def utterances():
    if not (TESTDATA / "librivox" / "transcription").is_file():
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
    from voicebot.audio.wav_io import read_wav, write_wav_atomic

    folder = tmp_path_factory.mktemp("tiny-ljspeech")
    rows = []
    for number, (wav, text) in enumerate(utterances):
        take_id = f"utt_{number:02d}"
        write_wav_atomic(folder / "wavs" / f"{take_id}.wav",
                         read_wav(wav, sample_rate=22050).samples, 22050)
        rows.append(f"{take_id}|{text}|{text}\n")
    (folder / "metadata.csv").write_text("".join(rows), encoding="utf-8")
    return folder


def white_noise(seconds: float, level: float, seed: int = 0, rate: int = 22050) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, level, int(seconds * rate))
            .astype(np.float32))
