"""Session-wide voices for the TTS tests: each real model is loaded once per run.

The Piper voice is the embedded en_US-joe-medium (its streaming split is cached in the
shared models folder). Tacotron2 and HiFi-GAN are built from Coqui configs with random
weights and saved as checkpoints in a temporary folder; their ONNX exports go to a
temporary models folder too, so test runs never fill the user's.
"""

from __future__ import annotations

import pytest

from voicebot.paths import MODELS_ENV


@pytest.fixture(scope="session")
def piper_voice():
    from voicebot.tts.voices import load_voice

    return load_voice("piper-en-us-joe-medium")


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory):
    from voicebot.tts.random_voice import write_random_voice

    return write_random_voice(tmp_path_factory.mktemp("coqui-random"))


@pytest.fixture(scope="session")
def export_models_dir(tmp_path_factory):
    """A models folder for this session's ONNX exports (set while voices are built)."""
    return tmp_path_factory.mktemp("tts-models")


@pytest.fixture(scope="session")
def tacotron_voices(random_checkpoints, export_models_dir):
    """{"torch", "onnx-fp32", "onnx-int8"}: one random-weight voice per engine.

    The stop token of random weights fires at an arbitrary step, so it is disabled and
    each utterance decodes exactly ``max_decoder_steps`` steps.
    """
    from voicebot.tts.tacotron import TacotronVoice

    tts_dir, vocoder_dir = random_checkpoints
    common = dict(max_decoder_steps=30, stop_threshold=2.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_ENV, str(export_models_dir))
        return {
            "torch": TacotronVoice.from_checkpoints(tts_dir, vocoder_dir, engine="torch",
                                                    device="cpu", **common),
            "onnx-fp32": TacotronVoice.from_checkpoints(tts_dir, vocoder_dir, engine="onnx",
                                                        device="cpu", decoder_precision="fp32",
                                                        **common),
            "onnx-int8": TacotronVoice.from_checkpoints(tts_dir, vocoder_dir, engine="onnx",
                                                        device="cpu", decoder_precision="int8",
                                                        **common),
        }
