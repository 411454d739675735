"""Take checks on real recorded speech and on manipulated copies of it."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.wav_io import read_wav
from voicebot.training.quality import QualityLimits, clipped_fraction

from .conftest import white_noise

RATE = 22050


def test_every_real_recording_passes_and_is_trimmed(utterances, checker):
    for wav, _ in utterances:
        audio = read_wav(wav, sample_rate=RATE).samples
        result = checker.check(audio, RATE)
        assert result.ok, f"{wav.name}: {result.reasons}"
        assert result.summary.startswith("OK")
        assert 0.7 <= result.speech_s <= result.duration_s
        assert result.snr_db is not None and result.snr_db > 15
        assert result.trimmed is not None and len(result.trimmed) <= len(audio)


def test_silence_around_a_take_is_trimmed_to_a_margin(speech, checker):
    padded = np.concatenate([np.zeros(2 * RATE, np.float32), speech,
                             np.zeros(2 * RATE, np.float32)])
    result = checker.check(padded, RATE)
    assert result.ok, result.reasons
    # 4 s of added silence is gone again, apart from the margins kept at each end.
    assert len(result.trimmed) < len(speech) + 2 * (QualityLimits().margin_s + 0.1) * RATE
    assert len(result.trimmed) > 0.8 * len(speech)


def _noisy(speech, snr_db):
    noise = white_noise(len(speech) / RATE, 1.0, seed=3)[:len(speech)]
    scale = np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) / 10 ** (snr_db / 20)
    return speech + noise * scale


@pytest.mark.parametrize("manipulation, problem, words", [
    (lambda s: np.clip(s * 10, -1, 1), "clipped", "clipped"),
    (lambda s: s * 0.01, "too_quiet", "too quiet"),
    (lambda s: _noisy(s, 8), "noisy", "background noise"),
    (lambda s: np.zeros(3 * RATE, np.float32), "no_speech", "No speech"),
    (lambda s: white_noise(3, 0.005, seed=1), "no_speech", "No speech"),
    (lambda s: s[:int(0.45 * RATE)], "too_short", "speech"),
    (lambda s: s[: int(0.55 * len(s))], "cut_off_end", "middle of speech"),
    (lambda s: np.tile(s, 3), "too_long", "too long"),
], ids=["clipped", "attenuated", "noise", "silence", "hiss-only", "fragment", "truncated",
        "too-long"])
def test_manipulated_takes_are_rejected_with_a_reason(speech, checker, manipulation, problem,
                                                      words):
    result = checker.check(manipulation(speech).astype(np.float32), RATE)
    assert not result.ok
    assert problem in result.problems, (result.problems, result.reasons)
    reason = result.reasons[result.problems.index(problem)]
    assert words in reason
    assert result.to_dict()["problems"] == result.problems


def test_loud_speech_touching_full_scale_once_is_not_clipping():
    signal = np.sin(np.linspace(0, 200 * np.pi, 22050)).astype(np.float32) * 0.9
    signal[1000] = 1.0  # a single full-scale sample
    assert clipped_fraction(signal, 0.98, 3) == 0.0
    flat = signal.copy()
    flat[2000:2010] = 1.0
    assert clipped_fraction(flat, 0.98, 3) == pytest.approx(10 / len(flat))


def test_an_empty_take_is_rejected_not_crashed(checker):
    result = checker.check(np.zeros(10, np.float32), RATE)
    assert not result.ok and result.problems == ["too_short"]
    with pytest.raises(ValueError, match="mono"):
        checker.check(np.zeros((100, 2), np.float32), RATE)
