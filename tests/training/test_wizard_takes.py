"""The wizard gets the user there: every take is heard by Whisper through the virtual
microphone (a misread one is flagged with the words that differ and can be recorded
again), and the summary enables training at the minimum, whatever base exists.

Real speech: a LibriVox sentence from pocketsphinx-testdata read in place of the prompt
(the misread take), and the embedded voice reading the prompt (the take done right).
Screenshots of both pages go to $VOICEBOT_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.training import test_training_tab
from voicebot.audio.wav_io import read_wav
from voicebot.training.dataset import MIN_MINUTES, MIN_TAKES, read_metadata
from voicebot.training.take_transcript import words_for_scoring

LEFT = Qt.MouseButton.LeftButton
tab = test_training_tab.tab  # the wizard on the virtual microphone and speaker


def screenshot(widget, name: str) -> Path | None:
    folder = os.environ.get("VOICEBOT_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    widget.resize(1000, 640)
    QApplication.processEvents()  # let the layout follow the new texts first
    assert widget.grab().save(str(path))
    return path


def record(qtbot, page, virtual_audio, samples, rate):
    """Press Record, speak ``samples`` into the virtual microphone, press Stop; returns
    the take id checked by Whisper afterwards."""
    checked = []
    page.take_checked.connect(checked.append)
    qtbot.mouseClick(page.record_button, LEFT)
    assert page.recorder.recording
    starts = virtual_audio.inject(samples, rate)
    end = starts + len(samples) / rate + 0.4
    while time.monotonic() < end:
        qtbot.wait(50)
    qtbot.mouseClick(page.record_button, LEFT)
    assert page.last_check.ok, page.last_check.reasons
    assert "Checking the words" in page.result_label.text()  # Whisper runs off the GUI
    qtbot.waitUntil(lambda: bool(checked), timeout=90_000)
    page.take_checked.disconnect(checked.append)
    return checked[0]


@pytest.mark.audio
def test_a_misread_take_is_flagged_and_recorded_again(qtbot, tab, virtual_audio,
                                                      utterances):
    from voicebot.tts.base import collect
    from voicebot.tts.voices import load_voice
    from voicebot.ui.training_tab import RECORD, SUMMARY

    tab.name_page.name_box.setEditText("Checked voice")
    assert tab.go_to(RECORD)
    qtbot.waitUntil(lambda: tab.recorder.is_open, timeout=5000)
    page = tab.record_page
    prompt = tab.prompts[page.index]
    wav, other_text = next(u for u in utterances if "amiable himself" in u[1])
    speech = read_wav(wav)  # 16 kHz LibriVox: "he might even have been made amiable himself"

    take_id = record(qtbot, page, virtual_audio, speech.samples, speech.sample_rate)
    take = tab.dataset.takes[take_id]
    assert take.prompt_index == page.index and take.misread
    label = page.result_label.text()
    assert label.startswith("⚠ Misread?") and "amiable" in label.lower()
    # The differing words are named: prompt words that were not heard.
    missing = set(words_for_scoring(prompt)) - set(words_for_scoring(other_text))
    assert sum(word in label.lower() for word in missing) >= 3, label
    assert page.keep_button.isVisible() and page.record_button.text() == "● Record again"
    assert take_id not in [row[0] for row in read_metadata(tab.dataset.metadata_file)]
    screenshot(tab, "record-page-misread-take.png")

    tab.go_to(SUMMARY)
    assert "1 take sounds like a different sentence" in tab.summary_page.summary_label.text()
    flagged = tab.summary_page.flagged_list
    assert flagged.isVisible() and flagged.count() == 1 and take_id in flagged.item(0).text()
    page.show_prompt(page.index + 3)  # wandered off; the list leads back to the take
    where = flagged.visualItemRect(flagged.item(0)).center()
    qtbot.mouseClick(flagged.viewport(), LEFT, pos=where)
    qtbot.mouseDClick(flagged.viewport(), LEFT, pos=where)
    assert tab.pages.currentIndex() == RECORD and page.index == take.prompt_index
    assert page.keep_button.isVisible() and "Misread" in page.result_label.text()

    # Recorded again, reading the prompt this time (the embedded voice reads it, its
    # sampling noise off: the same clear reading every run).
    voice = load_voice()
    voice.set_noise(0.0, 0.0)
    audio, rate = collect(voice.stream(prompt))
    assert record(qtbot, page, virtual_audio, audio, rate) == take_id
    take = tab.dataset.takes[take_id]
    assert not take.misread and take.transcript["wer"] < 0.3, take.transcript
    assert page.result_label.text().startswith("✔") and not page.keep_button.isVisible()
    assert take_id in [row[0] for row in read_metadata(tab.dataset.metadata_file)]


@pytest.mark.audio
def test_imported_takes_are_heard_too_and_a_mislabelled_one_can_be_kept(qtbot, tab,
                                                                        utterances, tmp_path):
    import soundfile as sf

    from voicebot.ui.training_tab import SUMMARY

    # An import folder whose second transcript belongs to another recording.
    folder = tmp_path / "import"
    (folder / "wavs").mkdir(parents=True)
    (right_wav, right_text), (wrong_wav, _), (_, other_text) = utterances[:3]
    rows = []
    for name, wav, text in (("a", right_wav, right_text), ("b", wrong_wav, other_text)):
        audio = read_wav(wav, sample_rate=22050)
        sf.write(folder / "wavs" / f"{name}.wav", audio.samples, 22050)
        rows.append(f"{name}|{text}|{text}\n")
    (folder / "metadata.csv").write_text("".join(rows), encoding="utf-8")
    tab.name_page.name_box.setEditText("Imported and checked")
    report = tab.import_recordings(folder)
    assert len(report.accepted) == 2 and tab.pages.currentIndex() == SUMMARY
    page = tab.record_page
    assert page.checking()  # Whisper hears them in the background
    qtbot.waitUntil(lambda: not page.checking(), timeout=90_000)
    takes = tab.dataset.takes
    wrong = next(t for t in takes.values() if t.text == other_text)
    assert wrong.misread and not next(t for t in takes.values() if t is not wrong).misread
    flagged = tab.summary_page.flagged_list
    assert flagged.count() == 1 and wrong.id in flagged.item(0).text()
    assert [r[0] for r in read_metadata(tab.dataset.metadata_file)] != sorted(takes)
    screenshot(tab, "summary-page-flagged-import.png")
    flagged.item(0).setSelected(True)
    qtbot.mouseClick(tab.summary_page.keep_button, LEFT)
    assert not tab.dataset.takes[wrong.id].misread and not flagged.isVisible()
    assert [r[0] for r in read_metadata(tab.dataset.metadata_file)] == sorted(takes)


def test_summary_enables_training_at_the_minimum(qtbot, tab, utterances):
    from voicebot.training.heldout import split_heldout
    from voicebot.ui.training_tab import ADAPT_ASR, PREVIEW, SUMMARY, TRAIN

    tab.name_page.name_box.setEditText("Enough voice")
    assert tab.open_voice()
    # Recognition adaptation and the preview do not wait for a voice model.
    assert tab.go_to(ADAPT_ASR) and tab.go_to(PREVIEW)
    dataset = tab.dataset
    clips = [(read_wav(wav, sample_rate=22050).samples, text) for wav, text in utterances]
    # Real speech, the test recordings over and over, until one take short of enough.
    seconds, count = 0.0, 0
    while True:
        samples, text = clips[count % len(clips)]
        if seconds + len(samples) / 22050 >= 60 * MIN_MINUTES and count + 1 >= MIN_TAKES:
            break
        dataset.add_take(f"p{count:04d}", text, samples, 22050, prompt_index=count)
        seconds += len(samples) / 22050
        count += 1
    assert count >= MIN_TAKES - 1
    tab.go_to(SUMMARY)
    shown = tab.summary_page.summary_label.text()
    assert "Still needed" in shown and not tab.summary_page.train_button.isEnabled()
    assert not tab.go_to(TRAIN) and tab.pages.currentIndex() == SUMMARY

    dataset.add_take(f"p{count:04d}", text, samples, 22050, prompt_index=count)
    tab.go_to(SUMMARY)
    shown = tab.summary_page.summary_label.text()
    summary = tab.summary()
    assert summary.ready and summary.takes == count + 1
    assert summary.minutes >= MIN_MINUTES and summary.min_minutes == MIN_MINUTES
    heldout = len(split_heldout(dataset.training_takes())[1])
    assert heldout == summary.heldout and abs(heldout - summary.takes / 10) <= 1
    assert f"Held out for scoring: {heldout} of the {summary.takes} takes" in shown
    assert "Enough speech to train" in shown and "Still needed" not in shown
    assert tab.summary_page.train_button.isEnabled()
    screenshot(tab, "summary-page-ready.png")
    qtbot.mouseClick(tab.summary_page.train_button, LEFT)
    assert tab.pages.currentIndex() == TRAIN
    assert tab.train_page.start_button.isEnabled()
