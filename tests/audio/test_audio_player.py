import time

import numpy as np
import pytest
from audio_test_utils import SPEECH_FILE, best_correlation, tone, wait_for

from voicebot.audio.player import Player
from voicebot.audio.virtual_device import SPEAKER_RATE
from voicebot.audio.wav_io import read_wav

pytestmark = pytest.mark.audio

SILENCE = 1e-3  # below -60 dBFS


@pytest.fixture
def player(virtual_audio):
    with Player("vspeaker") as opened:
        time.sleep(0.1)  # let the stream settle into its steady state
        yield opened


def _sounding(samples: np.ndarray) -> np.ndarray:
    return np.nonzero(np.abs(samples) > SILENCE)[0]


def test_speech_at_the_voice_rate_reaches_the_speaker_intact(virtual_audio, player):
    speech = read_wav(SPEECH_FILE, sample_rate=22_050)  # a typical TTS voice rate
    start = virtual_audio.speaker_frames()
    for piece in np.array_split(speech.samples, 17):  # arrives in chunks, like TTS output
        player.play(piece, speech.sample_rate)
    player.finish()
    assert player.wait_done(10)
    time.sleep(0.2)
    played, _ = virtual_audio.speaker_audio(start)
    expected = read_wav(SPEECH_FILE, sample_rate=SPEAKER_RATE).samples
    correlation, _ = best_correlation(played, expected)
    assert correlation >= 0.95


def test_first_sample_time_is_reported_and_matches_the_speaker(virtual_audio, player):
    for _ in range(3):
        start = virtual_audio.speaker_frames()
        requested = time.monotonic()
        player.play(tone(440, 0.3, 22_050), 22_050, last=True)
        first = player.wait_first_sample(1.0)
        assert first is not None and first >= requested
        assert player.utterance_started_at == pytest.approx(requested, abs=0.01)
        assert player.wait_done(2)
        time.sleep(0.1)
        played, played_from = virtual_audio.speaker_audio(start)
        onset = played_from + _sounding(played)[0] / SPEAKER_RATE
        # The speaker's own clock is estimated from when the pipe sink hands data over;
        # a few milliseconds either way is its resolution.
        assert abs(first - onset) < 0.03, f"reported {first - onset:+.3f} s from the onset"
        assert onset - requested < 0.1  # the first chunk starts at once


def test_stop_silences_the_speaker_within_50_ms_without_a_click(virtual_audio, player):
    for _ in range(3):
        start = virtual_audio.speaker_frames()
        player.play(tone(440, 3.0, 22_050), 22_050)
        assert wait_for(lambda: player.first_sample_time is not None, 1)
        time.sleep(0.3)
        stop_at = time.monotonic()
        assert player.stop() is True
        assert time.monotonic() - stop_at < 0.05
        assert not player.playing
        time.sleep(0.2)
        played, played_from = virtual_audio.speaker_audio(start)
        sounding = _sounding(played)
        last_sound = played_from + sounding[-1] / SPEAKER_RATE
        assert last_sound - stop_at < 0.05, f"sound went on {last_sound - stop_at:.3f} s"
        # A fade, not a cut: no step at the end larger than the tone's own slope.
        tail = played[sounding[-1] - 480:sounding[-1] + 2]
        tone_slope = 0.5 * 2 * np.pi * 440 / SPEAKER_RATE
        assert np.abs(np.diff(tail)).max() < 1.5 * tone_slope


def test_play_after_stop_starts_a_new_utterance(virtual_audio, player):
    player.play(tone(440, 2.0, 22_050), 22_050)
    player.stop()
    start = virtual_audio.speaker_frames()
    player.play(tone(660, 0.2, 16_000), 16_000, last=True)
    assert player.wait_first_sample(1) is not None
    assert player.wait_done(2)
    time.sleep(0.1)
    played, _ = virtual_audio.speaker_audio(start)
    sounding = played[_sounding(played)]
    spectrum = np.abs(np.fft.rfft(sounding))
    assert abs(np.argmax(spectrum) * SPEAKER_RATE / len(sounding) - 660) < 10
    assert 0.15 < len(sounding) / SPEAKER_RATE < 0.25  # nothing of the stopped tone left


def test_an_utterance_queued_behind_another_gets_its_own_first_sample_time(player):
    player.play(tone(440, 0.3, 22_050), 22_050, last=True)
    first_a = player.wait_first_sample(1.0)
    player.play(tone(660, 0.2, 22_050), 22_050, last=True)  # queued behind the first
    first_b = player.wait_first_sample(1.0)
    assert first_a is not None and first_b is not None
    assert first_b - first_a == pytest.approx(0.3, abs=0.015)
    assert player.wait_done(2)


def test_a_gap_inside_an_utterance_does_not_restart_its_timing(player):
    player.play(tone(440, 0.05, 22_050), 22_050)
    first = player.wait_first_sample(1.0)
    assert player.wait_done(1)  # the queue ran dry: the TTS is slower than real time
    player.play(tone(440, 0.05, 22_050), 22_050, last=True)
    assert player.first_sample_time == first
    assert player.wait_done(1)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def test_pause_keeps_the_queue_and_resume_goes_on_without_a_click(virtual_audio, player):
    start = virtual_audio.speaker_frames()
    player.play(tone(440, 1.0, 22_050), 22_050, last=True)
    assert wait_for(lambda: player.first_sample_time is not None, 1)
    time.sleep(0.2)
    player.pause()
    time.sleep(0.1)  # the fade and the device's buffer
    left = player.queued_seconds
    quiet_from = virtual_audio.speaker_frames()
    time.sleep(0.4)
    assert player.paused and player.playing and not player.wait_done(0.05)
    assert player.queued_seconds == left  # paused: nothing read from the queue
    assert player.written_s - player.played_s == pytest.approx(left)
    quiet, _ = virtual_audio.speaker_audio(quiet_from)
    assert len(quiet) and np.abs(quiet).max() < SILENCE
    player.resume()
    assert not player.paused and player.wait_done(3)
    time.sleep(0.2)
    played, _ = virtual_audio.speaker_audio(start)
    sounding = np.abs(played) > SILENCE
    first, last = _sounding(played)[[0, -1]]
    # One silence inside the tone (the pause; zero crossings are a sample or two), and
    # all of the second of tone heard, less the few ms the fade-out took.
    # (An underrun under load would add a gap of a few ms: not counted.)
    gaps = [(first + a, n) for a, n in _runs(~sounding[first:last])
            if n > 0.1 * SPEAKER_RATE]
    assert len(gaps) == 1 and gaps[0][1] > 0.4 * SPEAKER_RATE
    assert 0.98 * SPEAKER_RATE < np.count_nonzero(sounding) <= 1.0 * SPEAKER_RATE
    # Faded out and in: no step at either edge larger than the tone's own slope.
    tone_slope = 0.5 * 2 * np.pi * 440 / SPEAKER_RATE
    for edge in (gaps[0][0], gaps[0][0] + gaps[0][1]):
        around = played[edge - 480:edge + 480]
        assert np.abs(np.diff(around)).max() < 1.5 * tone_slope


def test_stop_while_paused_drops_the_queue_and_the_next_reply_plays(virtual_audio, player):
    player.play(tone(440, 2.0, 22_050), 22_050)
    assert wait_for(lambda: player.first_sample_time is not None, 1)
    player.pause()
    time.sleep(0.1)
    since = virtual_audio.speaker_frames()
    assert player.stop() is True
    assert not player.playing and not player.paused
    time.sleep(0.2)
    after_stop, _ = virtual_audio.speaker_audio(since)
    assert np.abs(after_stop).max() < SILENCE  # no blip of the dropped audio
    start = virtual_audio.speaker_frames()
    player.play(tone(660, 0.2, 16_000), 16_000, last=True)
    assert player.wait_done(2)
    time.sleep(0.1)
    played, _ = virtual_audio.speaker_audio(start)
    assert 0.15 < len(_sounding(played)) / SPEAKER_RATE < 0.25
