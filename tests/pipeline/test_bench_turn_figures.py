"""The hands-free turn benchmark's arithmetic: where speech ends, and what is reported."""

from __future__ import annotations

import numpy as np

from voicebot.asr.audio_input import read_audio_file
from voicebot.pipeline.bench_turn import hands_free_figures, speech_end_seconds
from voicebot.pipeline.conversation import Turn

RATE = 16_000
# Real recorded speech: "eight of spades four of clubs seven of hearts", 3.5 s.
USER = "/usr/share/pocketsphinx/test/data/cards/005.wav"


def test_speech_end_ignores_trailing_silence_and_low_noise():
    speech = read_audio_file(USER)
    end = speech_end_seconds(speech)
    assert 2.5 < end <= len(speech) / RATE
    rng = np.random.default_rng(0)
    tail = (1e-4 * rng.standard_normal(RATE)).astype(np.float32)  # a second of room noise
    padded = np.concatenate([speech, tail])
    assert speech_end_seconds(padded) == end
    # Cutting the speech earlier moves the end with it.
    assert speech_end_seconds(speech[:2 * RATE]) <= 2.0
    assert speech_end_seconds(np.zeros(5, np.float32)) == 0.0


def _turn(released: float | None, played: float | None) -> Turn:
    turn = Turn(id=1, source="voice")
    if released is not None:
        turn.timing.mark("ptt_release", released)
    if played is not None:
        turn.timing.mark("first_played", played)
    return turn


def test_hands_free_figures_count_cut_offs_and_time_the_last_turn():
    results = [
        (10.0, [_turn(10.3, 10.8)]),                     # 300 ms decision, 800 ms sound
        (20.0, [_turn(19.5, None), _turn(20.4, 21.0)]),  # cut off in a pause, then whole
        (30.0, [_turn(30.5, None)]),                     # no reply audio
    ]
    figures = hands_free_figures(results)
    assert figures["questions"] == 3 and figures["cut_off"] == 1
    assert figures["turns_without_reply_audio"] == 1
    assert figures["end_of_turn_ms_median"] == 400.0
    assert figures["end_of_speech_to_first_sound_ms_median"] == 900.0
    assert figures["end_of_speech_to_first_sound_ms_p90"] == 1000.0
