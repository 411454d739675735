"""Shared, session-scoped real models and recordings for the ASR tests.

Models load once per session (Whisper tiny.en ~2 s, Vosk Korean ~2 s, the
pocketsphinx LM ~0.1 s). The recordings are Debian's pocketsphinx-testdata; tests that
need them are skipped with a clear reason when the package is missing.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from voicebot.asr.audio_input import read_audio_file, to_recognizer_audio
from voicebot.asr.evaluate import pocketsphinx_testdata


@pytest.fixture(scope="session")
def utterances():
    items = pocketsphinx_testdata()
    if not items:
        pytest.skip("pocketsphinx-testdata is not installed (apt install pocketsphinx-testdata)")
    return items


@pytest.fixture(scope="session")
def clips(utterances):
    """(utterance, 16 kHz float32 audio) for every test recording."""
    return [(u, read_audio_file(u.audio)) for u in utterances]


@pytest.fixture(scope="session")
def short_clip(clips):
    """'he was not an ill disposed young man' (3.0 s)."""
    return next(a for u, a in clips if u.audio.name.endswith("0880.wav"))


@pytest.fixture(scope="session")
def whisper_model():
    from voicebot.asr.whisper_engine import load_whisper

    return load_whisper("whisper-tiny-en", "cpu")


@pytest.fixture(scope="session")
def ngram_lm():
    from voicebot.lm.ngram import load_catalog_ngram

    return load_catalog_ngram("pocketsphinx-en-us-lm")


@pytest.fixture(scope="session")
def vosk_model():
    from voicebot.asr.vosk_engine import load_vosk_model

    return load_vosk_model("vosk-ko")


@pytest.fixture(scope="session")
def korean_speech(tmp_path_factory):
    """Korean speech synthesised with espeak-ng (robotic, but real Korean phonetics)."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed")
    import soundfile as sf

    path = tmp_path_factory.mktemp("ko") / "ko.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(path),
                    "안녕하세요. 오늘 날씨가 정말 좋습니다."], check=True)
    data, rate = sf.read(path, dtype="float32")
    return to_recognizer_audio(data, rate)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), dtype=np.float32)
