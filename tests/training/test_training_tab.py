"""The Training tab offscreen: recording takes through the virtual microphone, and a real
training run started, cancelled and resumed from the train page."""

from __future__ import annotations

import time

import numpy as np
import pytest

from voicebot.audio.wav_io import read_wav
from voicebot.settings import Settings, load_settings

TRAIN_ARGS = ["--batch-size", "1", "--frames-per-step", "7", "--scratch", "--checkpoint-every", "2",
              "--preview-text", "Ten of clubs."]


@pytest.fixture
def tab(qtbot):
    from voicebot.ui.training_tab import TrainingTab

    settings = Settings()
    settings.audio.input_device = "vmic"
    settings.audio.output_device = "vspeaker"
    widget = TrainingTab(settings)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    if widget.train_page.running:
        widget.train_page.process.kill()
    widget.shutdown()


def _speak(qtbot, virtual_audio, samples, rate=16000):
    starts = virtual_audio.inject(samples, rate)
    end = starts + len(samples) / rate + 0.4
    while time.monotonic() < end:
        qtbot.wait(50)


@pytest.mark.audio
def test_record_three_prompts_one_clipped_one_silent(qtbot, tab, virtual_audio, utterances):
    from voicebot.ui.training_tab import MIC, RECORD, SUMMARY

    tab.name_page.name_box.setEditText("Wizard voice")
    qtbot.mouseClick(tab.next_button, qtbot_button())
    assert tab.pages.currentIndex() == MIC and tab.dataset.name == "Wizard voice"
    qtbot.waitUntil(lambda: tab.recorder.is_open, timeout=5000)
    qtbot.mouseClick(tab.next_button, qtbot_button())
    assert tab.pages.currentIndex() == RECORD
    page = tab.record_page
    assert page.index == 0 and page.prompt_label.text() == tab.prompts[0]
    speech = read_wav(utterances[2][0]).samples  # 16 kHz LibriVox sentence

    # A good take is kept.
    qtbot.mouseClick(page.record_button, qtbot_button())
    assert tab.recorder.recording and "Stop" in page.record_button.text()
    _speak(qtbot, virtual_audio, speech)
    qtbot.mouseClick(page.record_button, qtbot_button())
    assert page.last_check.ok, page.last_check.reasons
    assert page.result_label.text().startswith("✔")
    assert "p0000" in tab.dataset.takes
    stored = read_wav(tab.dataset.wav_path("p0000"))
    assert stored.sample_rate == 22050 and 0.5 * len(speech) / 16000 < stored.duration

    # A clipped take of the next prompt is rejected, and says why.
    qtbot.mouseClick(page.skip_button, qtbot_button())
    assert page.index == 1
    qtbot.mouseClick(page.record_button, qtbot_button())
    _speak(qtbot, virtual_audio, np.clip(speech * 12, -1, 1))
    qtbot.mouseClick(page.record_button, qtbot_button())
    assert not page.last_check.ok and "clipped" in page.last_check.problems
    assert page.result_label.text().startswith("✘") and "clipped" in page.result_label.text()
    assert tab.dataset.take_for_prompt(1) is None

    # Silence is rejected as "no speech" (hold-to-record mode this time).
    qtbot.mouseClick(page.skip_button, qtbot_button())
    page.hold_box.setChecked(True)
    page.record_button.pressed.emit()
    assert tab.recorder.recording
    qtbot.wait(1500)
    page.record_button.released.emit()
    assert page.last_check.problems == ["no_speech"]
    assert "No speech" in page.result_label.text()

    # Play back the good take through the virtual speaker.
    qtbot.mouseClick(page.previous_button, qtbot_button())
    qtbot.mouseClick(page.previous_button, qtbot_button())
    assert page.index == 0 and page.play_button.isEnabled()
    since = virtual_audio.speaker_frames()
    qtbot.mouseClick(page.play_button, qtbot_button())
    qtbot.waitUntil(lambda: np.abs(virtual_audio.speaker_audio(since)[0]).max(initial=0) > 0.05,
                    timeout=5000)

    # Whisper heard the kept take as what it is, another sentence than prompt 0: it is
    # flagged and left out of training (tests/training/test_wizard_takes.py).
    qtbot.waitUntil(lambda: not page.checking(), timeout=60_000)
    tab.go_to(SUMMARY)
    text = tab.summary_page.summary_label.text()
    assert "0 takes" in text and "2 takes rejected" in text and "Still needed" in text
    assert "1 take sounds like a different sentence" in text
    assert not tab.summary_page.train_button.isEnabled()


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_import_then_train_cancel_resume_and_use_the_voice(qtbot, tab, short_dataset,
                                                           virtual_audio):
    from voicebot.ui.training_tab import PREVIEW, SUMMARY, TRAIN

    tab.name_page.name_box.setEditText("Imported voice")
    report = tab.import_recordings(short_dataset)
    assert len(report.accepted) == 7 and not report.rejected
    assert tab.pages.currentIndex() == SUMMARY
    assert "Imported 7" in tab.summary_page.report_view.toPlainText()
    assert not tab.go_to(TRAIN)  # a quarter of a minute is far below the recommendation
    tab.min_minutes, tab.min_takes = 0.2, 7
    tab.go_to(SUMMARY)
    assert tab.summary_page.train_button.isEnabled()
    qtbot.mouseClick(tab.summary_page.train_button, qtbot_button())
    assert tab.pages.currentIndex() == TRAIN
    page = tab.train_page
    page.extra_args = TRAIN_ARGS
    page.steps_box.setValue(40)
    events = []
    page.process.event.connect(events.append)

    qtbot.mouseClick(page.start_button, qtbot_button())
    assert page.running and page.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: any(e["event"] == "sample" for e in events), timeout=120_000)
    assert len(page.steps) >= 2 and len(page.curves["loss"].getData()[0]) >= 2
    assert "steps/s" in page.rate_label.text() and "ETA" in page.rate_label.text()
    assert page.progress_bar.value() >= 2
    qtbot.mouseClick(page.cancel_button, qtbot_button())
    qtbot.waitUntil(lambda: not page.running and page.resume_button.isEnabled(),
                    timeout=60_000)
    cancelled = [e for e in events if e["event"] == "cancelled"]
    assert cancelled and page.status_label.text().startswith("Cancelled at step")
    stopped = cancelled[0]["step"]

    events.clear()
    qtbot.mouseClick(page.resume_button, qtbot_button())
    qtbot.waitUntil(lambda: any(e["event"] == "step" for e in events), timeout=120_000)
    start = next(e for e in events if e["event"] == "start")
    assert start["start_step"] == stopped
    assert next(e for e in events if e["event"] == "step")["step"] == stopped + 1
    qtbot.mouseClick(page.cancel_button, qtbot_button())
    qtbot.waitUntil(lambda: not page.running, timeout=60_000)
    assert page.steps[-1] > stopped  # the loss plot continues where it was

    tab.go_to(PREVIEW)
    preview = tab.preview_page
    assert preview.model_dir == page.run_dir and preview.sample.is_file()
    since = virtual_audio.speaker_frames()
    qtbot.mouseClick(preview.play_button, qtbot_button())
    qtbot.waitUntil(lambda: virtual_audio.speaker_frames() - since > 8000, timeout=5000)
    requested = []
    tab.voice_requested.connect(requested.append)
    qtbot.mouseClick(preview.use_button, qtbot_button())
    assert requested == [str(page.run_dir)]
    # The conversation loads it and only a voice that loaded is written to the settings
    # (tests/ui/test_voice_switch.py); the studio alone writes nothing.
    assert tab.settings.tts.voice != str(page.run_dir)
    assert load_settings().tts.voice != str(page.run_dir)
    from voicebot.training.dataset import trained_voices

    listed = trained_voices()
    assert [v["path"] for v in listed] == [str(page.run_dir)]
    assert listed[0]["name"].startswith("Imported voice (run-") and listed[0]["step"] > stopped


def test_a_killed_training_process_is_reported_with_its_log(qtbot, tab, short_dataset):
    from voicebot.ui.training_tab import TRAIN

    tab.name_page.name_box.setEditText("Crash voice")
    tab.import_recordings(short_dataset)
    tab.min_minutes, tab.min_takes = 0.1, 1
    assert tab.go_to(TRAIN)
    page = tab.train_page
    page.extra_args = [*TRAIN_ARGS, "--no-preview"]
    qtbot.mouseClick(page.start_button, qtbot_button())
    # (waitUntil takes a None result as success: the lambda must return a bool)
    qtbot.waitUntil(lambda: (page.last_event or {}).get("event") == "checkpoint",
                    timeout=120_000)
    page.process.kill()
    qtbot.waitUntil(lambda: not page.running, timeout=30_000)
    qtbot.waitUntil(lambda: "killed by signal 9" in page.status_label.text(), timeout=5000)
    assert "Press Resume" in page.status_label.text()
    assert page.resume_button.isEnabled() and page.start_button.isEnabled()
    assert "voicebot train tts" in page.log_view.toPlainText()
