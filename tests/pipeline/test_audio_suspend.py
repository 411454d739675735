"""Suspended audio ends on the real (virtual) devices: the streams stop, the process goes
quiet, and on resume the microphone hears again through the same ring."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest

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


@pytest.mark.audio
def test_push_to_talk_streams_rest_between_turns_and_the_press_wakes_them(virtual_audio):
    """On screen and idle in push-to-talk mode the streams rest after ``rest_after_s``;
    pressing the button reopens them in time to hear the question, and the reply is
    played; then they rest again."""
    from tests.pipeline.fakes import FakeVad, Recorder, fake_engines, wait_until
    from voicebot.pipeline.live_session import Session

    settings = Settings()
    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    settings.audio.rest_after_s = 0.5
    session = Session(settings, Recorder(), loads_models=False, persist=False, vad=FakeVad())
    try:
        session.start(fake_engines())
        assert not session.audio.suspended and session.audio.capture.running
        # ``suspended`` is set as the streams begin to stop; the capture stops just after.
        assert wait_until(lambda: session.audio.suspended
                          and not session.audio.capture.running, 5)
        played_before = virtual_audio.speaker_frames()
        turn = session.start_listening()
        assert session.audio.capture.running and not session.audio.suspended
        virtual_audio.inject(np.full(8000, 0.2, np.float32), 16000)
        recognizer = session.engines.recognizer
        assert wait_until(lambda: recognizer.fed >= 6000, 5)  # through the reopened mic
        session.stop_listening()
        assert wait_until(turn.finished.is_set, 10) and not turn.error
        assert turn.user_text and turn.reply_text
        assert wait_until(lambda: virtual_audio.speaker_frames() > played_before + 4800, 5)
        assert wait_until(lambda: session.audio.suspended, 5)  # resting again
        # Shown again (another tab and back), the streams run until the next rest.
        session.set_on_screen(True)
        assert not session.audio.suspended and session.audio.capture.running
    finally:
        assert session.close(3.0)


def test_no_rest_when_switched_off(sessions):
    from tests.pipeline.fakes import fake_session

    settings = Settings()
    settings.audio.rest_after_s = 0
    session, _recorder, _mic = fake_session(settings)
    sessions.append(session)
    time.sleep(0.3)
    assert not session.audio.suspended and session._rest_timer is None
