"""The sound server dies mid-session and comes back seconds later: the session shows the
loss at once, keeps trying, and the next turn works without touching Settings.

Real devices (the virtual PulseAudio, killed and restarted), fake engines (the session's
own logic is under test, in seconds)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.pipeline.fakes import FakeVad, Recorder, fake_engines, wait_until
from voicebot.pipeline import live_session
from voicebot.pipeline.display_state import Phase
from voicebot.pipeline.live_session import Session
from voicebot.settings import Settings


@pytest.mark.audio
def test_the_next_turn_works_after_the_sound_server_comes_back(virtual_audio, monkeypatch):
    monkeypatch.setattr(live_session, "RECOVER_AFTER_S", 0.3)
    monkeypatch.setattr(live_session, "RECOVER_POLL_S", 0.5)
    settings = Settings()
    settings.audio.input_device, settings.audio.output_device = "vmic", "vspeaker"
    settings.audio.rest_after_s = 0  # open streams see the loss; resting ones at the press
    recorder = Recorder()
    session = Session(settings, recorder, loads_models=False, persist=False, vad=FakeVad())
    try:
        session.start(fake_engines())
        assert session.audio.mic is not None and session.audio.speaker is not None
        lost_at = time.monotonic()
        virtual_audio.kill_daemon()
        assert wait_until(lambda: session.shown.phase is Phase.DEVICE_LOST, 3)
        assert time.monotonic() - lost_at < 3  # shown at once (the watchdogs: ~1.3 s)
        # Away longer than the quick tries: typing works meanwhile, the devices are
        # missing (and said to be), and the session keeps polling.
        time.sleep(3.0)
        assert session.can_type and session.audio.mic is None
        assert "No microphone" in session.shown.status
        virtual_audio.restart()
        assert wait_until(lambda: session.audio.mic is not None, 10), session.shown
        # The session was already READY without devices (typing works), so the phase
        # alone does not say the devices are back: the status must stop saying so (a CI
        # run read it in the moment between the microphone's return and the new status).
        assert wait_until(lambda: session.shown.phase is Phase.READY, 5), session.shown
        assert wait_until(lambda: "No microphone" not in session.shown.status, 5), \
            session.shown.status
        # The microphone hears again...
        mic = session.audio.mic.reader()
        virtual_audio.inject(np.full(8000, 0.2, np.float32), 16000)
        assert wait_until(lambda: mic.available > 4000, 5)
        # ...and a turn is answered aloud on the speaker.
        played_before = virtual_audio.speaker_frames()
        turn = session.submit_text("Are you back?")
        assert wait_until(turn.finished.is_set, 10) and not turn.error
        assert wait_until(lambda: virtual_audio.speaker_frames() > played_before + 4800, 5)
    finally:
        assert session.close(3.0)
