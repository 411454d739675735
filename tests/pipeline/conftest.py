"""Real engines, loaded once for the pipeline tests (they take seconds to load)."""

from __future__ import annotations

import pytest

from voicebot.settings import Settings


@pytest.fixture(scope="session")
def engines():
    from voicebot.pipeline.session import load_engines

    return load_engines(Settings(), device="cpu")


@pytest.fixture(scope="session")
def question_audio(engines):
    """A spoken question, synthesised by the embedded voice (16 kHz mono)."""
    import soxr

    from voicebot.tts.base import collect

    audio, rate = collect(engines.synthesizer.stream("What is the capital of France?"))
    return soxr.resample(audio, rate, 16000).astype("float32")
