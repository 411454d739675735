"""Tacotron2 and HiFi-GAN built from Coqui configs with random weights, saved as checkpoints.

Trained weights are downloaded by users later (the model store), so tests and the
benchmark need models they can make offline. These have the architecture and size of
Coqui's LJSpeech tacotron2-DDC and hifigan_v2 with freshly initialised weights: the sound
is noise, but the computation (and so the speed, and the agreement between engines) is
the real one. Checkpoints are written in Coqui's layout with the config inside.

``v1_mel=True`` writes a Tacotron2 whose config declares the HiFi-GAN V1 mel
(``voicebot.tts.mel_v1.v1_audio_config``), as voices trained here do: it is spoken
through the embedded V1 vocoder with no renormalisation.
"""

from __future__ import annotations

from pathlib import Path

from voicebot.tts.mel_v1 import v1_audio_config

TACOTRON_DIR = "tacotron2-random"
TACOTRON_V1_DIR = "tacotron2-random-v1mel"
HIFIGAN_DIR = "hifigan-v2-random"


def tacotron2_config(max_decoder_steps: int = 10000, v1_mel: bool = False):
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config

    # Characters (no phonemizer subprocess), r=2 and DDC as in Coqui's LJSpeech model.
    config = Tacotron2Config(use_phonemes=False, text_cleaner="english_cleaners", r=2,
                             double_decoder_consistency=True,
                             max_decoder_steps=max_decoder_steps)
    if v1_mel:
        config.audio = BaseAudioConfig(**v1_audio_config())
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


def build_tacotron2(seed: int = 0, max_decoder_steps: int = 10000, v1_mel: bool = False):
    import torch
    from TTS.tts.models import setup_model

    torch.manual_seed(seed)
    config = tacotron2_config(max_decoder_steps, v1_mel)
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


def write_random_tacotron2(folder: Path, seed: int = 0, v1_mel: bool = True) -> Path:
    """Save a random Tacotron2 (by default one declaring the V1 mel) under ``folder``
    (reused if present); returns its folder."""
    from voicebot.tts.coqui_checkpoint import save_checkpoint

    tts_dir = Path(folder) / (TACOTRON_V1_DIR if v1_mel else TACOTRON_DIR)
    if not (tts_dir / "model_file.pth").is_file():
        model, config = build_tacotron2(seed, v1_mel=v1_mel)
        save_checkpoint(model, config, tts_dir)
    return tts_dir
