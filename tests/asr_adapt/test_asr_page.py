"""The "Adapt recognition" page (offscreen): a real training process, cancel, WER shown,
and the settings switch."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pytestqt")

from voicebot.settings import load_settings
from voicebot.ui.training_asr_page import AsrAdaptPage


@pytest.fixture
def page(qtbot):
    widget = AsrAdaptPage()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_runs_cancels_and_shows_wer(page, qtbot, dataset, tmp_path):
    page.set_dataset(dataset, tmp_path / "run")
    assert page.start_button.isEnabled() and not page.resume_button.isEnabled()
    assert not page.use_box.isEnabled()  # no adapter yet
    page.extra_args = ["--model", "whisper-tiny-en", "--batch-size", "2", "--threads", "1",
                       "--device", "cpu"]
    page.steps_box.setValue(50)
    finished = []
    page.process.finished.connect(finished.append)
    page.start()
    assert page.cancel_button.isEnabled() and not page.start_button.isEnabled()
    qtbot.waitUntil(lambda: page.progress.value() >= 1,
                    timeout=120_000)
    assert page.progress.maximum() == 50 and page.progress.value() >= 1
    assert page.step_label.text().startswith("Step ")
    page.cancel()
    qtbot.waitUntil(lambda: bool(finished), timeout=120_000)
    assert finished == [0]
    assert page.status.text().startswith("Cancelled at step")
    assert page.wer_before is not None and page.wer_after is not None
    assert "before" in page.wer_label.text() and "—" not in page.wer_label.text()
    assert page.resume_button.isEnabled() and page.use_box.isEnabled()


def test_switch_writes_the_settings_field(page, adaptation_run, tmp_path):
    out, _, _ = adaptation_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    page.set_dataset(tmp_path, run)
    # The finished run's WER is read back from its progress.jsonl.
    assert page.wer_before is not None and page.wer_after is not None
    assert page.use_box.isEnabled() and not page.use_box.isChecked()
    changes = []
    page.adapter_changed.connect(changes.append)
    page.use_box.setChecked(True)
    has_field = hasattr(load_settings().asr, "adapter")
    if has_field:
        assert load_settings().asr.adapter == str(run / "adapter")
        assert changes == [str(run / "adapter")]
        page.use_box.setChecked(False)
        assert load_settings().asr.adapter == "" and changes[-1] == ""
    else:  # settings.py does not have AsrSettings.adapter yet: nothing is saved
        assert changes == [] and "no place for an adapter" in page.status.text()


def test_warns_when_adapting_made_it_worse(page):
    page.on_event({"event": "eval", "which": "before", "wer": 0.05})
    page.on_event({"event": "done", "step": 40, "wer_before": 0.05, "wer_after": 0.12})
    assert page.made_worse() and "worse than before" in page.status.text()
    assert "5.0 %" in page.wer_label.text() and "12.0 %" in page.wer_label.text()
    page.on_event({"event": "done", "step": 40, "wer_before": 0.12, "wer_after": 0.05})
    assert not page.made_worse() and page.status.text() == "Done."
