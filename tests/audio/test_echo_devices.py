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
    assert _play_through_the_room(virtual_audio) == []  # the VAD hears no speech


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
    echo_level = np.sqrt(np.mean(np.square(soxr.resample(raw, SPEAKER_RATE, ASR_RATE) * 0.5)))
    residual = np.sqrt(np.mean(np.square(cleaned[ASR_RATE:])))  # past AEC3's first second
    assert stats["frames_with_reference"] > 0.9 * stats["frames"]
    # Without the reference the residual is the echo itself (0 dB). Measured 35-63 dB
    # over runs here, where the PulseAudio loop underruns now and then under load.
    assert 20 * np.log10(echo_level / max(residual, 1e-9)) >= 20
    return speech_starts(cleaned, vad)
