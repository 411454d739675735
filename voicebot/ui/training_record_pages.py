"""Wizard pages that use the microphone: the microphone check and reading the prompts.

Each kept take is then heard by Whisper off the GUI thread (``TranscriptWorker``) and
compared with its prompt (``voicebot.training.take_transcript``): a take of another
sentence is flagged on the page with the words that differ, and left out of training
until it is recorded again or kept anyway.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from voicebot.audio.devices import AudioDeviceError
from voicebot.audio.resample import ASR_RATE, TRAINING_RATE
from voicebot.training.dataset import VoiceDataset
from voicebot.training.mic_check import analyze
from voicebot.training.quality import TakeCheck, TakeChecker
from voicebot.training.recorder import TakeRecorder
from voicebot.training.take_transcript import TakeTranscript
from voicebot.ui.widgets.scope import AudioScope

log = logging.getLogger(__name__)

QUIET_SECONDS = 2.0
SPEAK_SECONDS = 4.0


class MicCheckPage(QWidget):
    """Live scope and meter, and a two-phase measurement: silence, then speech."""

    def __init__(self, recorder: TakeRecorder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.result = None
        layout = QVBoxLayout(self)
        intro = QLabel("Check the microphone before recording. Sit where you will record, "
                       "press <b>Check microphone</b>, stay quiet for two seconds, then read "
                       "the sentence shown until the check ends.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.scope = AudioScope(ASR_RATE)
        layout.addWidget(self.scope, 1)
        row = QHBoxLayout()
        self.check_button = QPushButton("Check microphone")
        self.check_button.clicked.connect(self.start_check)
        row.addWidget(self.check_button)
        self.instruction = QLabel("")
        self.instruction.setWordWrap(True)
        row.addWidget(self.instruction, 1)
        layout.addLayout(row)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._next_phase)
        self._phase = ""
        self._quiet = np.zeros(0, np.float32)

    def activate(self) -> None:
        try:
            capture = self.recorder.open()
        except AudioDeviceError as exc:
            self.result_label.setText(f"⚠ The microphone cannot be opened: {exc}")
            self.check_button.setEnabled(False)
            return
        self.check_button.setEnabled(True)
        self.scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
        self.scope.start()

    def deactivate(self) -> None:
        self.scope.stop()
        self._timer.stop()
        if self._phase:
            self.recorder.stop()
            self._phase = ""
            self.check_button.setEnabled(True)

    def start_check(self) -> None:
        self.recorder.start()
        self._phase = "quiet"
        self.check_button.setEnabled(False)
        self.instruction.setText("Stay quiet…")
        self.result_label.setText("")
        self._timer.start(int(QUIET_SECONDS * 1000))

    def _next_phase(self) -> None:
        if self._phase == "quiet":
            self._quiet = self.recorder.stop()
            self.recorder.start()
            self._phase = "speak"
            self.instruction.setText("Now read aloud: “The quick brown fox jumps over the "
                                     "lazy dog, then naps in the warm sun.”")
            self._timer.start(int(SPEAK_SECONDS * 1000))
            return
        speaking = self.recorder.stop()
        self._phase = ""
        self.finish_check(self._quiet, speaking)

    def finish_check(self, quiet: np.ndarray, speaking: np.ndarray) -> None:
        self.result = analyze(quiet, speaking)
        self.instruction.setText("")
        icon = "✔" if self.result.ok else "⚠"
        self.result_label.setText(f"{icon} {self.result.text()}")
        self.check_button.setEnabled(True)


class TranscriptWorker(QObject):
    """Transcribes takes one after another on a daemon thread; results come back to the
    GUI thread as queued signals. The recogniser is made on first use (see
    ``take_transcript.take_recognizer``: it shares the app's Whisper when it has one)."""

    heard = Signal(str, int, dict)  # take id, serial, TakeTranscript.to_dict()
    failed = Signal(str, int, str)  # take id, serial, one-line reason

    def __init__(self, recognizer_source: Callable[[], tuple[Any, Any]]) -> None:
        super().__init__()
        self.recognizer_source = recognizer_source  # -> (app recognizer or None, asr settings)
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._recognizer = None
        self._source = None

    def submit(self, take_id: str, serial: int, prompt: str, samples: np.ndarray,
               rate: int) -> None:
        # The recogniser to use is read here, on the GUI thread.
        app_recognizer, asr_settings = self.recognizer_source()
        self._jobs.put((take_id, serial, prompt, samples, rate, app_recognizer, asr_settings))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="take-transcripts",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)

    def idle(self) -> bool:
        return self._jobs.unfinished_tasks == 0

    def _run(self) -> None:
        from voicebot.training.take_transcript import check_take, take_recognizer

        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                take_id, serial, prompt, samples, rate, app_recognizer, asr_settings = job
                try:
                    if self._recognizer is None or self._source is not app_recognizer:
                        self._recognizer = take_recognizer(app_recognizer, asr_settings)
                        self._source = app_recognizer
                    result = check_take(self._recognizer, prompt, samples, rate)
                except Exception as exc:  # no Whisper: the take stays, unchecked
                    log.exception("transcribing take %s failed", take_id)
                    self.failed.emit(take_id, serial, str(exc).splitlines()[0][:160]
                                     if str(exc) else type(exc).__name__)
                    continue
                self.heard.emit(take_id, serial, result.to_dict())
            finally:
                self._jobs.task_done()


def transcript_text(transcript: TakeTranscript) -> str:
    """What the page says about a checked take."""
    if transcript.misread:
        heard = f"“{transcript.heard.rstrip('.')}”" if transcript.heard else "no words"
        return (f"⚠ Misread? Whisper heard {heard}. Differs from the prompt: "
                f"{transcript.differences()}. This take is left out of training: record "
                "it again, or keep it if Whisper is wrong.")
    if transcript.diffs:
        return f"Whisper heard it, with small differences ({transcript.differences()})."
    return "Whisper heard every word."


class RecordPage(QWidget):
    """One prompt at a time: record (toggle or hold), play back, redo, skip."""

    take_saved = Signal()
    take_checked = Signal(str)  # a take id whose transcript is now stored

    def __init__(self, recorder: TakeRecorder, prompts: list[str],
                 parent: QWidget | None = None,
                 recognizer_source: Callable[[], tuple[Any, Any]] | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.prompts = prompts
        self.dataset: VoiceDataset | None = None
        self.checker = TakeChecker()
        self.index = 0
        self.last_take: np.ndarray | None = None
        self.last_check: TakeCheck | None = None
        self.worker = TranscriptWorker(recognizer_source or (lambda: (None, None)))
        self.worker.heard.connect(self._on_heard)
        self.worker.failed.connect(self._on_transcript_failed)
        self._serials: dict[str, int] = {}
        layout = QVBoxLayout(self)
        self.position_label = QLabel("")
        layout.addWidget(self.position_label)
        self.prompt_label = QLabel("")
        self.prompt_label.setWordWrap(True)
        self.prompt_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.prompt_label.font())
        font.setPointSize(font.pointSize() + 8)
        self.prompt_label.setFont(font)
        self.prompt_label.setMinimumHeight(120)
        layout.addWidget(self.prompt_label, 1)
        self.scope = AudioScope(ASR_RATE, seconds=4.0)
        self.scope.spectrogram.hide()
        layout.addWidget(self.scope)
        buttons = QHBoxLayout()
        self.previous_button = QPushButton("◀ Previous")
        self.record_button = QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.hold_box = QCheckBox("Hold to record")
        self.play_button = QPushButton("▶ Play back")
        self.keep_button = QPushButton("Keep anyway")
        self.keep_button.setToolTip("Whisper misheard: I read this sentence as written")
        self.keep_button.hide()
        self.skip_button = QPushButton("Skip ▶")
        for widget in (self.previous_button, self.record_button, self.hold_box,
                       self.play_button, self.keep_button, self.skip_button):
            buttons.addWidget(widget)
        layout.addLayout(buttons)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.result_label)
        self.previous_button.clicked.connect(lambda: self.show_prompt(self.index - 1))
        self.skip_button.clicked.connect(lambda: self.show_prompt(self.index + 1))
        self.record_button.clicked.connect(self._on_record_clicked)
        self.record_button.pressed.connect(self._on_record_pressed)
        self.record_button.released.connect(self._on_record_released)
        self.play_button.clicked.connect(self.play_back)
        self.keep_button.clicked.connect(self.keep_anyway)

    # ----- navigation -------------------------------------------------------------
    def set_dataset(self, dataset: VoiceDataset) -> None:
        if self.dataset is None or self.dataset.folder != dataset.folder:
            self._serials.clear()  # checks still running belong to the voice open before
        self.dataset = dataset
        first_open = next((i for i in range(len(self.prompts))
                           if dataset.take_for_prompt(i) is None), 0)
        self.show_prompt(first_open)

    def activate(self) -> None:
        try:
            capture = self.recorder.open()
        except AudioDeviceError as exc:
            self.result_label.setText(f"⚠ The microphone cannot be opened: {exc}")
            self.record_button.setEnabled(False)
            return
        self.record_button.setEnabled(True)
        self.scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
        self.scope.start()

    def deactivate(self) -> None:
        if self.recorder.recording:  # leaving mid-take: drop it rather than judge half
            self.recorder.stop()
            self.record_button.setChecked(False)
            self.show_prompt(self.index)
        self.scope.stop()

    def show_prompt(self, index: int) -> None:
        if self.recorder.recording:
            self.stop_recording()
        self.index = max(0, min(index, len(self.prompts) - 1))
        self._show_position()
        self.prompt_label.setText(self.prompts[self.index])
        take = self.dataset.take_for_prompt(self.index) if self.dataset else None
        self.last_take, self.last_check = None, None
        self._flag(False)
        if take is not None and take.misread:
            self.record_button.setText("● Record again")
            self.result_label.setText(transcript_text(TakeTranscript.from_dict(
                take.transcript)))
            self._flag(True)
        elif take is not None:
            self.record_button.setText("● Redo")
            heard = (" " + transcript_text(TakeTranscript.from_dict(take.transcript))
                     if take.transcript else "")
            self.result_label.setText(f"✔ Recorded ({take.duration_s:.1f} s).{heard} Record "
                                      "again to replace it, or go on.")
        else:
            self.record_button.setText("● Record")
            self.result_label.setText("Press Record, read the sentence, press Stop.")
        self.previous_button.setEnabled(self.index > 0)
        self.skip_button.setEnabled(self.index < len(self.prompts) - 1)
        self.play_button.setEnabled(take is not None)

    def _show_position(self) -> None:
        takes = [t for t in (self.dataset.takes.values() if self.dataset else ())
                 if t.prompt_index is not None]
        redo = sum(1 for t in takes if t.misread)
        self.position_label.setText(f"Prompt {self.index + 1} of {len(self.prompts)} — "
                                    f"{len(takes)} recorded"
                                    + (f", {redo} to record again" if redo else ""))

    def _flag(self, misread: bool) -> None:
        """Show (or clear) the misread state: amber verdict and the Keep anyway button."""
        self.keep_button.setVisible(misread)
        self.result_label.setStyleSheet("background:#fefcbf; color:#744210; padding:4px;"
                                        if misread else "")

    # ----- recording --------------------------------------------------------------
    def _on_record_clicked(self, checked: bool) -> None:
        if self.hold_box.isChecked():
            return  # press/release drive it
        if checked:
            self.start_recording()
        else:
            self.stop_recording()

    def _on_record_pressed(self) -> None:
        if self.hold_box.isChecked():
            self.start_recording()

    def _on_record_released(self) -> None:
        if self.hold_box.isChecked():
            self.stop_recording()

    def start_recording(self) -> None:
        self.recorder.stop_playback()
        self.recorder.start()
        self.record_button.setChecked(True)
        self.record_button.setText("■ Stop")
        self.result_label.setText("Recording… read the sentence, then press Stop.")

    def stop_recording(self) -> TakeCheck:
        samples = self.recorder.stop()
        self.record_button.setChecked(False)
        return self.judge_take(samples)

    def judge_take(self, samples: np.ndarray) -> TakeCheck:
        """Check a take and store it when it passes; the verdict is shown."""
        result = self.checker.check(samples, TRAINING_RATE)
        self.last_check = result
        text = self.prompts[self.index]
        self.last_take = result.trimmed if result.ok else samples
        self._flag(False)
        if result.ok:
            take_id = f"p{self.index:04d}"
            self.dataset.add_take(take_id, text, result.trimmed, TRAINING_RATE,
                                  check=result.to_dict(), prompt_index=self.index)
            self._check(take_id, text, result.trimmed, TRAINING_RATE)
            self.result_label.setText(f"✔ {result.summary}. Checking the words… Go on with "
                                      "Skip ▶ (or redo).")
            self.record_button.setText("● Redo")
        else:
            self.dataset.note_rejected(text, result.to_dict(), prompt_index=self.index)
            self.result_label.setText("✘ Not kept: " + " ".join(result.reasons))
            self.record_button.setText("● Record again")
        self.play_button.setEnabled(len(samples) > 0)
        self._show_position()
        self.take_saved.emit()
        return result

    # ----- what Whisper heard -------------------------------------------------------
    def _on_heard(self, take_id: str, serial: int, transcript: dict) -> None:
        if self.dataset is None or self._serials.get(take_id) != serial:
            return  # recorded again (or another voice opened) meanwhile
        take = self.dataset.set_transcript(take_id, transcript)
        if take is None:
            return
        self._serials.pop(take_id, None)
        if take.prompt_index == self.index:
            result = TakeTranscript.from_dict(transcript)
            if take.misread:
                self.result_label.setText(transcript_text(result))
                self.record_button.setText("● Record again")
                self._flag(True)
            else:
                self.result_label.setText(f"✔ Kept ({take.duration_s:.1f} s). "
                                          f"{transcript_text(result)} Go on with Skip ▶.")
        self._show_position()
        self.take_saved.emit()
        self.take_checked.emit(take_id)

    def _on_transcript_failed(self, take_id: str, serial: int, reason: str) -> None:
        if self._serials.get(take_id) != serial:
            return
        self._serials.pop(take_id, None)
        take = self.dataset.takes.get(take_id) if self.dataset else None
        if take is not None and take.prompt_index == self.index:
            self.result_label.setText(self.result_label.text().replace(
                "Checking the words…", f"(The words could not be checked: {reason}.)"))
        self.take_checked.emit(take_id)

    def _check(self, take_id: str, text: str, samples: np.ndarray, rate: int) -> None:
        self._serials[take_id] = serial = self._serials.get(take_id, 0) + 1
        self.worker.submit(take_id, serial, text, samples, rate)

    def check_takes(self, take_ids: list[str]) -> None:
        """Have Whisper hear stored takes too (imported recordings), in the background."""
        from voicebot.audio.wav_io import AudioFileError, read_wav

        for take_id in take_ids:
            take = self.dataset.takes.get(take_id) if self.dataset else None
            if take is None:
                continue
            try:
                data = read_wav(self.dataset.wav_path(take_id))
            except AudioFileError as exc:
                log.warning("take %s not checked: %s", take_id, exc)
                continue
            self._check(take_id, take.text, data.samples, data.sample_rate)

    def checking(self) -> bool:
        """Takes are still waiting for Whisper."""
        return bool(self._serials)

    def keep_anyway(self) -> None:
        take = self.dataset.take_for_prompt(self.index) if self.dataset else None
        if take is not None:
            self.dataset.keep_anyway(take.id)
            self.show_prompt(self.index)
            self.take_saved.emit()

    def shutdown(self) -> None:
        self.worker.stop()

    def play_back(self) -> None:
        audio = self.last_take
        if audio is None and self.dataset is not None:
            take = self.dataset.take_for_prompt(self.index)
            if take is not None:
                from voicebot.audio.wav_io import read_wav

                audio = read_wav(self.dataset.wav_path(take.id)).samples
        if audio is None or not len(audio):
            return
        try:
            self.recorder.play(audio, TRAINING_RATE)
        except AudioDeviceError as exc:
            self.result_label.setText(f"⚠ The speaker cannot be opened: {exc}")
