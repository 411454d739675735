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

    voice = load_voice("piper-en-us-joe-medium")
    # Noise off: the same audio every run, so what Whisper hears back cannot vary (with
    # the default noise the intelligibility test failed once in a fresh-clone CI run).
    voice.set_noise(0.0, 0.0)
    return voice


@pytest.fixture(scope="session")
def random_checkpoints(tmp_path_factory):
    from voicebot.tts.random_voice import write_random_voice

    return write_random_voice(tmp_path_factory.mktemp("coqui-random"))


@pytest.fixture(scope="session")
def export_models_dir(tmp_path_factory):
    """A models folder for this session's ONNX exports (set while voices are built)."""
    return tmp_path_factory.mktemp("tts-models")


@pytest.fixture(scope="session")
def tacotron_models(random_checkpoints):
    """(Tacotron2, its config, HiFi-GAN generator, its config), loaded once."""
    from voicebot.tts.coqui_checkpoint import load_hifigan, load_tacotron2

    return (*load_tacotron2(random_checkpoints[0]), *load_hifigan(random_checkpoints[1]))


@pytest.fixture(scope="session")
def tacotron_voices(random_checkpoints, tacotron_models, export_models_dir):
    """{"torch", "onnx-fp32", "onnx-int8", "onnx-int4"}: one random-weight voice per engine.

    The stop token of random weights fires at an arbitrary step, so it is disabled and
    each utterance decodes exactly ``max_decoder_steps`` steps.
    """
    from voicebot.tts.tacotron import TacotronVoice, TorchBackend
    from voicebot.tts.tacotron_onnx import OnnxBackend

    tts_dir, vocoder_dir = random_checkpoints
    model, tts_config, generator, vocoder_config = tacotron_models  # shared by all engines
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_ENV, str(export_models_dir))
        backends = {
            "torch": TorchBackend(model, generator, device="cpu"),
            **{f"onnx-{precision}": OnnxBackend.from_models(
                model, generator, tts_dir, vocoder_dir, device="cpu",
                decoder_precision=precision) for precision in ("fp32", "int8", "int4")},
        }
    return {name: TacotronVoice(backend, tts_config, vocoder_config, voice_id=name,
                                tokenizer=model.tokenizer, max_decoder_steps=30,
                                stop_threshold=2.0)
            for name, backend in backends.items()}
