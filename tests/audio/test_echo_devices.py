"""Echo cancellation through the virtual devices: the Player's reference tap, the
Capture's ADC stamps and its pump's EchoStream on real PortAudio streams.

A "room" thread carries what the virtual speaker plays back into the virtual microphone
(quieter, reverberant, after the devices' own latencies: ~100-200 ms, never announced to
the canceller), so the canceller has to find the delay from the timestamps and AEC3.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soxr
from audio_test_utils import SPEECH_DIR

from voicebot.asr.audio_input import read_audio_file
from voicebot.audio.capture import Capture
from voicebot.audio.echo import EchoCanceller
from voicebot.audio.player import Player
from voicebot.audio.resample import ASR_RATE, StreamResampler
from voicebot.audio.room_sim import speech_starts
from voicebot.audio.vad import SileroVad
from voicebot.audio.virtual_device import SPEAKER_RATE

pytestmark = pytest.mark.audio

BOT = SPEECH_DIR / "librivox" / "sense_and_sensibility_01_austen_64kb-0890.wav"


class _Room(threading.Thread):
    """Speaker -> microphone: 0.5 x (direct + a decaying 30 ms tail), 10 ms at a time."""

    def __init__(self, audio) -> None:
        super().__init__(name="test-room", daemon=True)
        self.audio = audio
        self.stop = threading.Event()
        self.resampler = StreamResampler(SPEAKER_RATE, ASR_RATE)
        rng = np.random.default_rng(3)
        tail = rng.standard_normal(480) * np.exp(-np.arange(480) / 120) * 0.05
        self.ir = np.concatenate([[1.0], tail]).astype(np.float32) * 0.5
        self.history = np.zeros(len(self.ir) - 1, np.float32)

    def run(self) -> None:
        since = self.audio.speaker_frames()
        # A cushion in the microphone's queue: this thread may wake late, and a queue that
        # runs dry gets silence inserted, which would lengthen the echo path for good.
        self.audio.inject(np.zeros(ASR_RATE // 10, np.float32), ASR_RATE)
        while not self.stop.wait(0.01):
            played, _ = self.audio.speaker_audio(since)
            since += len(played)
            block = self.resampler.process(played)
            if len(block) == 0:
                continue
            padded = np.concatenate([self.history, block])
            echo = np.convolve(padded, self.ir, mode="valid").astype(np.float32)
            self.history = padded[-(len(self.ir) - 1):]
            self.audio.inject(echo, ASR_RATE)


def test_the_capture_removes_what_the_player_played(virtual_audio):
    _play_through_the_room(virtual_audio)


def _play_through_the_room(virtual_audio) -> list[float]:
    vad = SileroVad()
    bot = read_audio_file(BOT)
    room = _Room(virtual_audio)
    with Player("vspeaker", latency=0.05) as player, \
            Capture("vmic", samplerate=16_000, echo_canceller=EchoCanceller()) as capture:
        assert capture.set_echo_reference(player.reference)
        assert capture.echo_cancelling
        room.start()
        try:
            time.sleep(0.3)
            cleaned_reader = capture.ring(ASR_RATE).reader()
            raw = []
            since = virtual_audio.speaker_frames()
            player.play(bot, ASR_RATE, last=True)
            assert player.wait_done(15)
            time.sleep(0.5)  # the echo's tail
            cleaned = cleaned_reader.read()
            raw, _ = virtual_audio.speaker_audio(since)
        finally:
            room.stop.set()
            room.join(1)
        stats = capture.stats()["echo"]
    echo_db = 20 * np.log10(np.sqrt(np.mean(np.square(
        soxr.resample(raw, SPEAKER_RATE, ASR_RATE) * 0.5))))
    assert stats["frames_with_reference"] > 0.9 * stats["frames"]
    # Per half second after AEC3's first second, how far below the echo the residual is.
    # Without the reference: 0 dB everywhere. Measured 55-65 dB in most runs; a PulseAudio
    # underrun during the reply (it happens under load: 2 runs in 5) shifts the echo path
    # and leaves 5-20 dB for the rest of this short reply, so the assertion asks for a
    # third of the windows. The targets (ERLE, no speech heard) are checked in memory, in
    # test_echo.py and bench echo.
    windows = [cleaned[i:i + ASR_RATE // 2] for i in range(ASR_RATE, len(cleaned) - 4000, 4000)]
    below = [echo_db - 10 * np.log10(np.mean(np.square(w)) + 1e-20) for w in windows]
    assert sum(db >= 30 for db in below) >= len(below) / 3, below
    return speech_starts(cleaned, vad)


def _settings(headset: bool = False):
    from voicebot.settings import Settings

    settings = Settings()
    settings.audio.input_device = "vmic"
    settings.audio.output_device = "vspeaker"
    settings.audio.headset_mode = headset
    return settings


@pytest.mark.parametrize("headset", [False, True])
def test_a_session_cancels_the_echo_unless_the_user_wears_a_headset(virtual_audio, headset):
    from voicebot.pipeline.audio_ends import open_devices

    ends = open_devices(_settings(headset))
    try:
        assert ends.problems == []
        assert ends.echo_cancelling is not headset
        assert ends.capture.echo_cancelling is not headset
    finally:
        assert ends.close(2.0)


def test_without_the_canceller_the_session_says_why_and_gates_as_before(
        virtual_audio, monkeypatch, caplog):
    from voicebot.audio import echo
    from voicebot.pipeline.audio_ends import open_devices

    monkeypatch.setattr(echo, "load_echo_canceller",
                        lambda rate=ASR_RATE: (None, "pywebrtc-audio could not be imported"))
    ends = open_devices(_settings())
    try:
        assert not ends.echo_cancelling
        assert ends.mic is not None and ends.speaker is not None
        assert "pywebrtc-audio could not be imported" in caplog.text
    finally:
        assert ends.close(2.0)


@pytest.mark.parametrize("cancelling", [False, True])
def test_hands_free_listens_over_the_bot_only_with_the_echo_cancelled(cancelling):
    from tests.pipeline.fakes import FakeVad, fake_engines, memory_audio
    from voicebot.pipeline.live_session import Session
    from voicebot.settings import Settings

    session = Session(Settings(), loads_models=False, persist=False, vad=FakeVad())
    audio, _mic, _speaker = memory_audio()
    audio.echo_cancelling = cancelling
    session.start(fake_engines(), audio)
    try:
        assert session.start_hands_free().headset is cancelling
    finally:
        session.close(3.0)
