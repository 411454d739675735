"""Suspended audio ends on the real (virtual) devices: the streams stop, the process goes
quiet, and on resume the microphone hears again through the same ring."""

from __future__ import annotations

import time

import numpy as np
import psutil

from voicebot.pipeline.audio_ends import open_devices
from voicebot.settings import Settings


def _cpu_percent(seconds: float) -> float:
    process = psutil.Process()
    before, started = process.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    return 100 * used / (time.monotonic() - started)


def test_suspend_stops_the_streams_and_resume_hears_again(virtual_audio):
    settings = Settings()
    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    ends = open_devices(settings)
    try:
        assert ends.capture.running and not ends.problems
        time.sleep(0.5)
        running = _cpu_percent(2.0)
        ends.suspend()
        assert not ends.capture.running
        resting = _cpu_percent(2.0)
        # Open streams cost several percent of a core here; stopped, only what else runs
        # in the test process remains. Only the order is asserted: a busy CI machine
        # moves both numbers.
        assert resting < running, (resting, running)
        ends.resume()
        assert ends.capture.running
        reader = ends.mic.reader()
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
        virtual_audio.inject(tone, 16000)
        deadline = time.monotonic() + 5
        heard = 0.0
        while time.monotonic() < deadline and heard < 0.1:
            time.sleep(0.1)
            chunk = reader.read()
            if len(chunk):
                heard = max(heard, float(np.abs(chunk).max()))
        assert heard >= 0.1  # the tone came through the resumed microphone
    finally:
        ends.close()
