"""The Piper voice's own phoneme durations, read from the graph of the real voice."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.tts.mel_v1 import mel_v1
from voicebot.tts.piper import PiperVoice
from voicebot.tts.piper_durations import DurationVoice, phoneme_frames


@pytest.fixture(scope="module")
def duration_voice():
    from voicebot.training.teacher_corpus import piper_model_file

    model = piper_model_file()
    voice = PiperVoice(model, streaming=False, warm_up=False, threads=1)
    voice.set_noise(0.0, 0.0)
    return DurationVoice(voice, model, threads=1)


def test_the_durations_cover_the_audio_frame_for_frame(duration_voice):
    spoken = duration_voice.speak("The cat sat on the mat, and then it slept.")
    assert spoken.audio.size > 0.8 * duration_voice.sample_rate
    # One Piper frame is one V1 mel hop: the frames add up to the audio exactly.
    assert int(spoken.frames.sum()) * 256 == spoken.audio.size
    assert len(mel_v1(spoken.audio).T) == spoken.frames.sum()
    voice = duration_voice.voice
    assert spoken.phonemes == voice.phonemes("The cat sat on the mat, and then it slept.")
    assert (spoken.frames >= 1).all()


def test_the_pause_at_a_comma_is_where_the_durations_put_it(duration_voice):
    # Piper pauses at a comma; the frames timed to the comma must be the quiet ones and
    # the vowels' frames loud, or the durations do not describe this audio.
    spoken = duration_voice.speak("Yes, we can go.")
    mel = mel_v1(spoken.audio).T
    level = mel.max(axis=1)
    edges = np.concatenate([[0], np.cumsum(spoken.frames)])
    comma = spoken.phonemes.index(",")
    vowel = spoken.phonemes.index("ɛ")
    pause = level[edges[comma]:edges[comma + 1]]
    said = level[edges[vowel]:edges[vowel + 1]]
    assert pause.size >= 3, "Piper holds a comma for a pause"
    assert np.median(said) - np.median(pause) > 4.0  # nats: over 35 dB quieter


def test_pads_and_the_end_symbol_go_to_the_phoneme_before_them():
    char_of = {1: "^", 2: "$", 0: "_", 10: "a", 11: "b"}
    ids = [1, 0, 10, 0, 11, 0, 2]
    chars, frames = phoneme_frames(ids, np.array([2, 1, 3, 1, 4, 2, 1.0]), char_of)
    assert chars == "ab"
    assert frames.tolist() == [2 + 1 + 3 + 1, 4 + 2 + 1]
