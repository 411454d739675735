import time

import numpy as np
import pytest
from audio_test_utils import SPEECH_FILE, best_correlation, tone, wait_for

from voicebot.audio.capture import Capture
from voicebot.audio.resample import ASR_RATE, TRAINING_RATE
from voicebot.audio.wav_io import read_wav

pytestmark = pytest.mark.audio


@pytest.fixture(scope="module")
def speech():
    return read_wav(SPEECH_FILE)


def _speak_and_capture(virtual_audio, capture, audio, rate):
    readers = {r: capture.ring(r).reader() for r in capture.rings}
    with capture:
        # Audio spoken before the stream runs is lost, as with a real microphone.
        assert wait_for(lambda: capture.ring(ASR_RATE).frames_written > 1600, 2)
        virtual_audio.inject(audio, rate)
        assert virtual_audio.wait_mic_idle(len(audio) / rate + 3)
        time.sleep(0.15)
    return {r: reader.read() for r, reader in readers.items()}


@pytest.mark.parametrize(("samplerate", "channels"),
                         [(None, None), (48_000, 2), (44_100, 2), (44_100, 1), (16_000, 1)],
                         ids=["device-default", "48k-stereo", "44k1-stereo", "44k1-mono",
                              "16k-mono"])
def test_real_speech_is_captured_intact(virtual_audio, speech, samplerate, channels):
    capture = Capture("vmic", samplerate=samplerate, channels=channels,
                      output_rates=(ASR_RATE, TRAINING_RATE))
    if samplerate:
        assert capture.samplerate == samplerate
    got = _speak_and_capture(virtual_audio, capture, speech.samples, speech.sample_rate)
    correlation, _ = best_correlation(got[ASR_RATE], speech.samples)
    assert correlation >= 0.95, f"16 kHz capture correlates only {correlation:.3f}"
    # The training copy at 22.05 kHz holds the same speech.
    source_22k = read_wav(SPEECH_FILE, sample_rate=TRAINING_RATE).samples
    correlation_22k, _ = best_correlation(got[TRAINING_RATE], source_22k)
    assert correlation_22k >= 0.95
    assert capture.input_overflows == 0 and capture.dropped_frames == 0
    assert capture.error is None


def test_capture_counts_clipping_on_the_raw_samples(virtual_audio):
    capture = Capture("vmic", samplerate=48_000, channels=2)
    loud = np.clip(tone(300, 0.3, 16_000, amplitude=3.0), -1, 1)  # a hard-clipped tone
    _speak_and_capture(virtual_audio, capture, loud, 16_000)
    assert capture.clipped_samples > 100


def test_quiet_input_does_not_count_as_clipping(virtual_audio):
    capture = Capture("vmic")
    got = _speak_and_capture(virtual_audio, capture, tone(300, 0.3, 16_000, 0.3), 16_000)
    assert capture.clipped_samples == 0
    assert 0.25 < np.abs(got[ASR_RATE]).max() < 0.35
