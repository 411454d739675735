"""The stand-in microphone and speaker that `bench turn --turn-audio memory` uses."""

from __future__ import annotations

import time

import numpy as np

from voicebot.audio.memory_io import MemorySpeaker, PacedMicrophone


def test_the_paced_microphone_delivers_speech_at_the_real_time_rate():
    mic = PacedMicrophone(16000, seconds=5)
    speech = np.sin(np.linspace(0, 800 * np.pi, 8000)).astype(np.float32)  # 0.5 s
    reader = mic.ring.reader()
    started = time.monotonic()
    mic.say(speech).join(5)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.45  # not all at once
    assert np.array_equal(reader.read(reader.available), speech)


def test_the_memory_speaker_stamps_the_first_sample_and_plays_for_the_audio_length():
    speaker = MemorySpeaker()
    before = time.monotonic()
    speaker.play(np.zeros(4410, np.float32), 22050)  # 0.2 s
    speaker.play(np.zeros(4410, np.float32), 22050, last=True)
    first = speaker.wait_first_sample()
    assert first is not None and before <= first <= time.monotonic()
    assert speaker.playing
    assert speaker.wait_done(timeout=2.0)
    assert time.monotonic() - first >= 0.35
    assert speaker.samples_played == 8820


def test_stop_silences_the_memory_speaker_at_once():
    speaker = MemorySpeaker()
    speaker.play(np.zeros(22050 * 5, np.float32), 22050)
    assert speaker.stop()
    assert not speaker.playing and speaker.wait_done(timeout=0.01)
