import librosa
import numpy as np
import pytest
from audio_test_utils import SPEECH_FILE, retained_allocations, tone

from voicebot.audio import features
from voicebot.audio.features import StreamingLogMel, StreamingStft
from voicebot.audio.wav_io import read_wav

RATE = 16_000


@pytest.fixture(scope="module")
def speech():
    return read_wav(SPEECH_FILE, sample_rate=RATE).samples


def test_frames_follow_the_25_ms_window_and_10_ms_hop():
    stft = StreamingStft(RATE)
    assert (stft.win, stft.hop, stft.n_fft) == (400, 160, 512)
    frames = stft.push(np.zeros(RATE, np.float32))
    assert sum(len(f) for f in frames) == 1 + (RATE - 400) // 160


def test_pushing_in_pieces_gives_the_same_frames_as_one_push(speech):
    whole = StreamingLogMel(RATE).push(speech).copy()
    streaming = StreamingLogMel(RATE)
    rng = np.random.default_rng(1)
    parts, pos = [], 0
    while pos < len(speech):
        n = int(rng.integers(1, 2_500))  # from single samples to longer than a batch
        parts.append(streaming.push(speech[pos:pos + n]).copy())
        pos += n
    pieces = np.concatenate(parts)
    assert pieces.shape == whole.shape == (1 + (len(speech) - 400) // 160, 80)
    np.testing.assert_allclose(pieces, whole, atol=1e-3)


def test_log_mel_matches_librosa(speech):
    ours = StreamingLogMel(RATE).push(speech)
    # librosa centres the 400-sample window in its 512-sample frame: shift the signal so
    # both look at the same samples. Our window is scaled so a full-scale sine is 0 dB;
    # librosa's is not, which is a constant offset in dB.
    shifted = np.concatenate([np.zeros(56, np.float32), speech])
    reference = librosa.feature.melspectrogram(
        y=shifted, sr=RATE, n_fft=512, win_length=400, hop_length=160, center=False,
        window="hann", n_mels=80, norm=None, power=2.0).T
    frames = min(len(ours), len(reference))
    ours, reference = ours[:frames], reference[:frames]
    window = np.hanning(401)[:-1]
    offset_db = 10 * np.log10((2 / window.sum()) ** 2)
    expected = 10 * np.log10(np.maximum(reference * (2 / window.sum()) ** 2, 1e-10))
    assert abs(offset_db) > 1  # the comparison would be meaningless without the offset
    loud = expected > -80  # compare where there is signal, not the floor
    np.testing.assert_allclose(ours[loud], expected[loud], atol=0.05)


@pytest.mark.parametrize("freq", [250, 1000, 3000])
def test_a_pure_tone_lands_in_its_mel_band_at_its_level(freq):
    mel = StreamingLogMel(RATE)
    frames = mel.push(tone(freq, 0.5, RATE, amplitude=0.5))
    mean = frames[5:].mean(axis=0)
    assert abs(int(np.argmax(mean)) - mel.band_of(freq)) <= 1
    # A 0.5 amplitude sine is -6 dBFS; the bands either side share its energy.
    assert -10 < mean.max() < -5
    far = mel.band_of(freq * 2.5)
    assert mean.max() - mean[far] > 40


def test_steady_pushes_allocate_nothing_per_frame():
    mel = StreamingLogMel(RATE)
    block = tone(440, 0.01, RATE)  # 10 ms: one hop per push, like a live capture
    for _ in range(10):
        mel.push(block)
    assert retained_allocations(lambda: all(mel.push(block) is not None for _ in range(500)),
                                features.__file__) < 2048
