"""The length cap: a Tacotron2 whose stop token never fires still ends each piece."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.tts.base import collect
from voicebot.tts.tacotron import MAX_FRAMES_PER_ID, MIN_CAP_FRAMES, TacotronVoice, frame_cap


@pytest.fixture(scope="module")
def backend(tacotron_models):
    from voicebot.tts.tacotron import TorchBackend

    model, _, generator, _ = tacotron_models
    return TorchBackend(model, generator, device="cpu")


def never_stopping_voice(backend, tacotron_models, **options) -> TacotronVoice:
    model, tts_config, _, vocoder_config = tacotron_models
    # A sigmoid never exceeds 2: the stop token never fires, as in an undertrained voice.
    return TacotronVoice(backend, tts_config, vocoder_config, voice_id="never-stops",
                         tokenizer=model.tokenizer, max_decoder_steps=10000,
                         stop_threshold=2.0, **options)


def counted_steps(voice: TacotronVoice, text: str) -> tuple[np.ndarray, int]:
    steps = []
    real_step = voice.backend.step

    def counting_step(*args):
        steps.append(1)
        return real_step(*args)

    voice.backend.step = counting_step
    try:
        audio, _ = collect(voice.stream(text))
    finally:
        del voice.backend.step
    return audio, len(steps)


def test_frame_cap_grows_with_the_ids():
    assert frame_cap(1) == MIN_CAP_FRAMES
    assert frame_cap(30) == int(np.ceil(30 * MAX_FRAMES_PER_ID)) > MIN_CAP_FRAMES
    assert frame_cap(10, None) is None


def test_a_voice_that_never_stops_is_cut_at_the_cap(backend, tacotron_models):
    voice = never_stopping_voice(backend, tacotron_models)
    text = "Hello there, how are you?"  # 25 ids: 300 frames, past the 130-frame floor
    ids = voice.text_ids(text).size
    r, hop = backend.frames_per_step, backend.hop
    audio, steps = counted_steps(voice, text)
    cap = frame_cap(ids)
    assert steps == -(-cap // r) < 10000  # cut by the cap, long before max_decoder_steps
    # The decoded frames plus HiFi-GAN's 5 padding frames at each end, 256 samples each.
    assert audio.size == (steps * r + 10) * hop
    assert audio.size <= (cap + r - 1 + 10) * hop
    assert np.all(np.isfinite(audio))


def test_no_cap_decodes_to_max_decoder_steps(backend, tacotron_models):
    voice = never_stopping_voice(backend, tacotron_models, max_frames_per_id=None)
    voice.max_decoder_steps = 80  # the cap would cut these 9 ids at 65 steps (r=2)
    ids = voice.text_ids("Hi there.")
    assert -(-frame_cap(ids.size) // backend.frames_per_step) == 65
    # The decoder alone (no vocoder): one block of r frames per step.
    assert sum(1 for _ in voice._decoded(ids, None)) == 80
