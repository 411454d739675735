"""Wizard pages that use the microphone: the microphone check and reading the prompts."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
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
from voicebot.training.mic_check import analyse
from voicebot.training.quality import TakeCheck, TakeChecker
from voicebot.training.recorder import TakeRecorder
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
        self.result = analyse(quiet, speaking)
        self.instruction.setText("")
        icon = "✔" if self.result.ok else "⚠"
        self.result_label.setText(f"{icon} {self.result.text()}")
        self.check_button.setEnabled(True)


class RecordPage(QWidget):
    """One prompt at a time: record (toggle or hold), play back, redo, skip."""

    take_saved = Signal()

    def __init__(self, recorder: TakeRecorder, prompts: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.prompts = prompts
        self.dataset: VoiceDataset | None = None
        self.checker = TakeChecker()
        self.index = 0
        self.last_take: np.ndarray | None = None
        self.last_check: TakeCheck | None = None
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
        self.skip_button = QPushButton("Skip ▶")
        for widget in (self.previous_button, self.record_button, self.hold_box,
                       self.play_button, self.skip_button):
            buttons.addWidget(widget)
        layout.addLayout(buttons)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        self.previous_button.clicked.connect(lambda: self.show_prompt(self.index - 1))
        self.skip_button.clicked.connect(lambda: self.show_prompt(self.index + 1))
        self.record_button.clicked.connect(self._on_record_clicked)
        self.record_button.pressed.connect(self._on_record_pressed)
        self.record_button.released.connect(self._on_record_released)
        self.play_button.clicked.connect(self.play_back)

    # ----- navigation -------------------------------------------------------------
    def set_dataset(self, dataset: VoiceDataset) -> None:
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
        done = sum(1 for i in range(len(self.prompts))
                   if self.dataset and self.dataset.take_for_prompt(i))
        self.position_label.setText(f"Prompt {self.index + 1} of {len(self.prompts)} — "
                                    f"{done} recorded")
        self.prompt_label.setText(self.prompts[self.index])
        take = self.dataset.take_for_prompt(self.index) if self.dataset else None
        self.last_take, self.last_check = None, None
        if take is not None:
            self.record_button.setText("● Redo")
            self.result_label.setText(f"✔ Recorded ({take.duration_s:.1f} s). Record again to "
                                      "replace it, or go on.")
        else:
            self.record_button.setText("● Record")
            self.result_label.setText("Press Record, read the sentence, press Stop.")
        self.previous_button.setEnabled(self.index > 0)
        self.skip_button.setEnabled(self.index < len(self.prompts) - 1)
        self.play_button.setEnabled(take is not None)

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
        if result.ok:
            self.dataset.add_take(f"p{self.index:04d}", text, result.trimmed, TRAINING_RATE,
                                  check=result.to_dict(), prompt_index=self.index)
            self.result_label.setText(f"✔ {result.summary}. Go on with Skip ▶ (or redo).")
            self.record_button.setText("● Redo")
        else:
            self.dataset.note_rejected(text, result.to_dict(), prompt_index=self.index)
            self.result_label.setText("✘ Not kept: " + " ".join(result.reasons))
            self.record_button.setText("● Record again")
        self.play_button.setEnabled(len(samples) > 0)
        self.take_saved.emit()
        return result

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
