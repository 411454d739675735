"""Tacotron2 and HiFi-GAN built from Coqui configs with random weights, saved as checkpoints.

Trained weights are downloaded by users later (the model store), so tests and the
benchmark need models they can make offline. These have the architecture and size of
Coqui's LJSpeech tacotron2-DDC and hifigan_v2 with freshly initialised weights: the sound
is noise, but the computation (and so the speed, and the agreement between engines) is
the real one. Checkpoints are written in Coqui's layout with the config inside.
"""

from __future__ import annotations

from pathlib import Path

TACOTRON_DIR = "tacotron2-random"
HIFIGAN_DIR = "hifigan-v2-random"


def tacotron2_config(max_decoder_steps: int = 10000):
    from TTS.tts.configs.tacotron2_config import Tacotron2Config

    # Characters (no phonemizer subprocess), r=2 and DDC as in Coqui's LJSpeech model.
    config = Tacotron2Config(use_phonemes=False, text_cleaner="english_cleaners", r=2,
                             double_decoder_consistency=True,
                             max_decoder_steps=max_decoder_steps)
    config.audio.do_trim_silence = False  # the same samples from every engine
    return config


def hifigan_v2_config():
    from TTS.vocoder.configs.hifigan_config import HifiganConfig

    config = HifiganConfig()
    # hifigan_v2: the small generator (upsample_initial_channel 128) Coqui pairs with DDC.
    config.generator_model_params = {**config.generator_model_params,
                                     "upsample_initial_channel": 128}
    config.audio.do_trim_silence = False
    return config


def build_tacotron2(seed: int = 0, max_decoder_steps: int = 10000):
    import torch
    from TTS.tts.models import setup_model

    torch.manual_seed(seed)
    config = tacotron2_config(max_decoder_steps)
    model = setup_model(config).eval()
    return model, config


def build_hifigan(seed: int = 0):
    import torch
    from TTS.vocoder.models import setup_model

    torch.manual_seed(seed)
    config = hifigan_v2_config()
    return setup_model(config).eval(), config


def write_random_voice(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Save both checkpoints under ``folder`` (reused if present); returns their folders."""
    from voicebot.tts.coqui_checkpoint import save_checkpoint

    folder = Path(folder)
    tts_dir, vocoder_dir = folder / TACOTRON_DIR, folder / HIFIGAN_DIR
    if not (tts_dir / "model_file.pth").is_file():
        model, config = build_tacotron2(seed)
        save_checkpoint(model, config, tts_dir)
    if not (vocoder_dir / "model_file.pth").is_file():
        gan, config = build_hifigan(seed)
        save_checkpoint(gan, config, vocoder_dir)
    return tts_dir, vocoder_dir
