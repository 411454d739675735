"""Bad or unusual input gives defined results and never crashes a recogniser.

Contract (see voicebot/asr/audio_input.py): recognisers take mono float32 at 16 kHz.
Other rates and stereo are converted by the caller with ``to_recognizer_audio`` (capture
and ``read_audio_file`` already do); 2-D input to ``feed`` is refused with a clear error.
NaN/inf samples become silence, samples beyond [-1, 1] are clipped, int16 is scaled.
No speech (empty, silence, noise) gives an empty n-best list.
"""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from voicebot.asr.audio_input import sanitize, to_recognizer_audio
from voicebot.asr.wer import count_errors
from voicebot.asr.whisper_engine import WhisperRecognizer
from voicebot.text.scoring import for_scoring

from .conftest import silence

REFERENCE = "he was not an ill disposed young man"


@pytest.fixture
def recognizer(whisper_model):
    return WhisperRecognizer(whisper_model, nbest=3)


def _final(recognizer, audio, chunk=None):
    if chunk is None:
        recognizer.feed(audio)
    else:
        for i in range(0, len(audio), chunk):
            recognizer.feed(audio[i:i + chunk])
    return recognizer.finish()


@pytest.mark.parametrize("make", [
    lambda: np.zeros(0, dtype=np.float32),
    lambda: silence(2.0),
    lambda: (np.random.default_rng(0).standard_normal(32000) * 0.1).astype(np.float32),
    lambda: (np.random.default_rng(1).standard_normal(32000) * 0.003).astype(np.float32),
], ids=["empty", "silence", "noise", "quiet-noise"])
def test_no_speech_gives_an_empty_nbest(recognizer, make):
    assert _final(recognizer, make(), chunk=320) == []


def test_a_tenth_of_a_second_is_fine(recognizer, short_clip):
    result = _final(recognizer, short_clip[8000:9600])
    assert isinstance(result, list) and len(result) <= 3


def test_clipped_nan_and_int16_speech_is_still_recognised(recognizer, short_clip):
    clipped = np.clip(short_clip * 20.0, -1.0, 1.0)
    with_nans = short_clip.copy()
    with_nans[::1000] = np.nan
    with_nans[5] = np.inf
    as_int16 = (short_clip * 32767).astype(np.int16)
    for audio in (clipped, with_nans, as_int16):
        hyps = _final(recognizer, audio)
        assert hyps and count_errors(REFERENCE, hyps[0].text).wer <= 0.5
    assert np.isfinite(sanitize(with_nans)).all()
    assert float(np.abs(sanitize(short_clip * 3)).max()) <= 1.0


def test_other_rates_and_stereo_are_resampled_by_the_caller(recognizer, short_clip):
    expected = for_scoring(_final(recognizer, short_clip)[0].text)
    for rate in (8000, 48000):
        resampled = soxr.resample(short_clip, 16000, rate)
        converted = to_recognizer_audio(resampled, rate)
        assert abs(len(converted) - len(short_clip)) < 50
        hyps = _final(recognizer, converted)
        assert count_errors(expected, hyps[0].text).wer <= 0.3
    stereo = np.stack([short_clip, short_clip * 0.5], axis=1)
    with pytest.raises(ValueError, match="mono"):
        recognizer.feed(stereo)
    recognizer.reset()
    assert for_scoring(_final(recognizer, to_recognizer_audio(stereo, 16000))[0].text) == expected


def test_ten_minutes_are_chunked_with_bounded_memory(whisper_model, clips):
    """10 minutes of silence with three sentences in it: all three come back, in order."""
    recognizer = WhisperRecognizer(whisper_model, nbest=1, streaming=False)
    buffer = recognizer._buffer
    speech = {60.0: "0930.wav", 300.2: "001.wav", 545.0: "003.wav"}
    by_name = {u.audio.name[-8:]: (u, a) for u, a in clips}
    total, second = 600, 16000
    for start in range(total):
        block = silence(1.0)
        for at, name in speech.items():
            _, audio = by_name[name]
            offset = int(at * second) - start * second
            lo, hi = max(0, offset), min(second, offset + len(audio))
            if lo < hi:
                block[lo:hi] = audio[lo - offset:hi - offset]
        recognizer.feed(block)
        # Nothing grows with the input: one fixed 30 s buffer, text for closed segments.
        assert recognizer._buffer is buffer and recognizer._length <= recognizer.max_segment
    assert len(recognizer._segments) <= 3
    hyps = recognizer.finish(1)
    reference = " ".join(by_name[name][0].reference for name in speech.values())
    assert count_errors(reference, hyps[0].text).wer <= 0.2, hyps[0].text
