"""Microphone check: advice from a quiet stretch and a spoken one (real speech)."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.wav_io import read_wav
from voicebot.training.mic_check import analyze

from .conftest import white_noise


@pytest.fixture(scope="module")
def spoken(utterances):
    return read_wav(utterances[3][0], sample_rate=22050).samples


def test_a_good_setup_gets_a_go_ahead(spoken):
    check = analyze(white_noise(2, 0.0005), spoken)
    assert check.ok and check.snr_db > 25 and not check.clipped
    assert "Sounds good" in check.text()


@pytest.mark.parametrize("quiet_level, gain, expected", [
    (0.0005, 12.0, "clips"),
    (0.0005, 0.02, "very quiet"),
    (0.02, 1.0, "noisy"),
], ids=["clipping", "too-quiet", "noisy-room"])
def test_problems_get_advice(spoken, quiet_level, gain, expected):
    noise = white_noise(len(spoken) / 22050, quiet_level, seed=5)[:len(spoken)]
    check = analyze(white_noise(2, quiet_level), np.clip(spoken * gain + noise, -1, 1))
    assert not check.ok
    assert any(expected in line for line in check.advice), check.advice


@pytest.mark.audio
def test_mic_check_page_through_the_virtual_microphone(qtbot, virtual_audio, spoken,
                                                       monkeypatch):
    from voicebot.training.recorder import TakeRecorder
    from voicebot.ui import training_record_pages
    from voicebot.ui.training_record_pages import MicCheckPage

    monkeypatch.setattr(training_record_pages, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(training_record_pages, "SPEAK_SECONDS", 3.5)
    recorder = TakeRecorder("vmic", "vspeaker")
    page = MicCheckPage(recorder)
    qtbot.addWidget(page)
    page.show()
    try:
        page.activate()
        assert page.check_button.isEnabled()
        qtbot.mouseClick(page.check_button, _left())
        qtbot.waitUntil(lambda: "read aloud" in page.instruction.text(), timeout=5000)
        virtual_audio.inject(spoken, 22050)
        qtbot.waitUntil(lambda: page.result is not None, timeout=10_000)
        # The virtual microphone is digitally silent between injections.
        assert page.result.noise_floor_dbfs < -60
        assert page.result.speech_peak_dbfs > -20
        assert page.result_label.text().startswith("✔"), page.result_label.text()
    finally:
        page.deactivate()
        recorder.close()


def _left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton
