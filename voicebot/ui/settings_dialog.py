"""The Settings dialog: devices (with a level test), recognition, chat, voice, modes.

Model menus list every catalog model of the right kind and say which are installed; a
model that is not installed can be downloaded from here, with progress and cancel. The
dialog edits a copy of the settings: nothing changes until OK.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from voicebot.models.store import ModelStore
from voicebot.settings import Settings
from voicebot.ui.widgets.level_meter import LevelMeter

log = logging.getLogger(__name__)

ASR_KINDS = {"whisper": "asr-whisper", "vosk": "asr-vosk"}
VOICE_KINDS = ("tts-onnx-voice", "tts-tacotron2")
LEVEL_TEST_SECONDS = 3.0


def model_rows() -> list[dict[str, Any]]:

    try:
        return ModelStore().status()
    except Exception as exc:  # a broken catalog must not keep the dialog from opening
        log.warning("could not read the model catalog: %s", exc)
        return []


class DownloadWorker(QObject):
    """Downloads one model on a daemon thread; signals arrive in the GUI thread."""

    progress = Signal(str, float)  # text, fraction (-1: unknown)
    done = Signal(str, str)  # model id, error message ("" on success)

    def __init__(self, model_id: str) -> None:
        super().__init__()
        self.model_id = model_id
        self.cancel = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"download-{self.model_id}",
                         daemon=True).start()

    def _run(self) -> None:

        def report(p) -> None:
            eta = f", {p.eta:.0f} s left" if p.eta is not None else ""
            text = (f"{p.file}: {p.done / 1e6:.1f}"
                    + (f" of {p.total / 1e6:.1f}" if p.total else "")
                    + f" MB at {p.rate / 1e6:.1f} MB/s{eta}")
            self.progress.emit(text, p.fraction if p.fraction is not None else -1.0)

        try:
            ModelStore().download(self.model_id, progress=report, cancel=self.cancel)
            self.done.emit(self.model_id, "")
        except Exception as exc:
            self.done.emit(self.model_id, f"{type(exc).__name__}: {exc}")


class ModelChooser(QWidget):
    """A model menu for some kinds, with a Download button for models not installed."""

    def __init__(self, kinds: tuple[str, ...], current: str) -> None:
        super().__init__()
        self.kinds = kinds
        self.combo = QComboBox()
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.progress = QProgressBar()
        self.progress.hide()
        self.message = QLabel("")
        self.message.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.progress)
        column.addWidget(self.message)
        self.worker: DownloadWorker | None = None
        self.combo.currentIndexChanged.connect(self._update_button)
        self.refresh(current)

    def refresh(self, current: str | None = None) -> None:
        current = current if current is not None else self.value()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.rows = [r for r in model_rows() if r["kind"] in self.kinds]
        for row in self.rows:
            size = f", {row['size_mb']:.0f} MB" if row.get("size_mb") else ""
            state = "installed" if row["installed"] else row["state"]
            self.combo.addItem(f"{row['id']}  ({state}{size})", row["id"])
        if current and self.combo.findData(current) < 0:
            self.combo.addItem(f"{current}  (not in the catalog)", current)
        index = self.combo.findData(current)
        self.combo.setCurrentIndex(max(0, index))
        self.combo.blockSignals(False)
        self._update_button()

    def value(self) -> str:
        return self.combo.currentData() or ""

    def selected_row(self) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["id"] == self.value()), None)

    def _update_button(self) -> None:
        row = self.selected_row()
        self.download_button.setVisible(bool(row) and not row["installed"]
                                         and self.worker is None)
        self.message.setText(row.get("description", "") if row else "")

    def download(self) -> None:
        model_id = self.value()
        self.worker = DownloadWorker(model_id)
        self.worker.progress.connect(self._on_progress)
        self.worker.done.connect(self._on_done)
        self.cancel_button.clicked.connect(self.worker.cancel.set)
        self.download_button.hide()
        self.cancel_button.show()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.message.setText(f"Downloading {model_id}…")
        self.worker.start()

    def _on_progress(self, text: str, fraction: float) -> None:
        if fraction >= 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.message.setText(text)

    def _on_done(self, model_id: str, error: str) -> None:
        self.worker = None
        self.cancel_button.hide()
        self.progress.hide()
        self.refresh(model_id)
        self.message.setText(f"Download failed: {error}" if error else f"{model_id} installed.")


class LevelTest(QWidget):
    """Records from the chosen input for a few seconds and shows the level."""

    def __init__(self, device_combo: QComboBox) -> None:
        super().__init__()
        self.device_combo = device_combo
        self.button = QPushButton("Test microphone")
        self.button.clicked.connect(self.start)
        self.meter = LevelMeter()
        self.result = QLabel("")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.button)
        row.addWidget(self.meter, 1)
        row.addWidget(self.result)
        self.capture: Any = None
        self.loudest = 0.0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.ticks_left = 0

    def start(self) -> None:
        from voicebot.audio.capture import Capture
        from voicebot.audio.devices import AudioDeviceError

        try:
            self.capture = Capture(self.device_combo.currentData() or "").start()
        except AudioDeviceError as exc:
            self.result.setText(str(exc))
            return
        self.loudest = 0.0
        self.ticks_left = int(LEVEL_TEST_SECONDS * 20)
        self.button.setEnabled(False)
        self.result.setText("Say something…")
        self.timer.start(50)

    def _tick(self) -> None:
        ring = self.capture.ring(16000)
        recent = ring.latest(800)
        peak = self.capture.take_peak()
        rms = float(np.sqrt(np.mean(recent ** 2))) if len(recent) else 0.0
        self.loudest = max(self.loudest, peak)
        self.meter.set_level(peak, rms, clipped=peak >= 0.999)
        self.ticks_left -= 1
        if self.ticks_left <= 0 or self.capture.error is not None:
            self.stop()

    def stop(self) -> None:
        self.timer.stop()
        if self.capture is not None:
            error = self.capture.error
            self.capture.stop()
            self.capture = None
            if error is not None:
                self.result.setText(f"Stopped: {error}")
            elif self.loudest < 0.01:
                self.result.setText("Very quiet: check the microphone or its volume.")
            elif self.loudest >= 0.999:
                self.result.setText("Clipping: lower the input volume.")
            else:
                self.result.setText(f"Good: peak {20 * np.log10(self.loudest):.0f} dBFS.")
        self.button.setEnabled(True)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(640, 520)
        self.original = settings
        self.settings = copy.deepcopy(settings)
        tabs = QTabWidget()
        tabs.addTab(self._audio_page(), "Audio")
        tabs.addTab(self._recognition_page(), "Recognition")
        tabs.addTab(self._chat_page(), "Chat")
        tabs.addTab(self._voice_page(), "Voice")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        # Why OK was refused (a chosen model that is not installed), shown above the buttons.
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b3261e")
        self.problem.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    # ----- pages ----------------------------------------------------------------
    def _device_combo(self, kind: str, current: str) -> QComboBox:
        from voicebot.audio.devices import list_devices

        combo = QComboBox()
        combo.addItem("System default", "")
        try:
            for device in list_devices(kind):
                combo.addItem(device.label, device.name)
        except Exception as exc:  # no PortAudio at all: still let the user see why
            combo.addItem(f"(cannot list devices: {exc})", "")
        if current and combo.findData(current) < 0:
            combo.addItem(f"{current} (not connected)", current)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        return combo

    def _audio_page(self) -> QWidget:
        a = self.settings.audio
        page = QWidget()
        form = QFormLayout(page)
        self.input_combo = self._device_combo("input", a.input_device)
        self.output_combo = self._device_combo("output", a.output_device)
        self.level_test = LevelTest(self.input_combo)
        self.headset_box = QCheckBox("Headset: keep listening while the bot speaks")
        self.headset_box.setChecked(a.headset_mode)
        self.hands_free_box = QCheckBox("Hands-free: voice activity starts and ends a turn")
        self.hands_free_box.setChecked(a.hands_free)
        form.addRow("Microphone", self.input_combo)
        form.addRow("", self.level_test)
        form.addRow("Speaker", self.output_combo)
        form.addRow("", self.headset_box)
        form.addRow("", self.hands_free_box)
        return page

    def _recognition_page(self) -> QWidget:
        r = self.settings.asr
        page = QWidget()
        form = QFormLayout(page)
        self.engine_combo = QComboBox()
        for engine in ASR_KINDS:
            self.engine_combo.addItem(engine.capitalize(), engine)
        self.engine_combo.setCurrentIndex(max(0, self.engine_combo.findData(r.engine)))
        self.asr_model = ModelChooser((ASR_KINDS.get(r.engine, "asr-whisper"),), r.model)
        self.engine_combo.currentIndexChanged.connect(self._engine_changed)
        self.nbest_spin = QSpinBox()
        self.nbest_spin.setRange(1, 10)
        self.nbest_spin.setValue(r.nbest)
        weights = QGroupBox("Rescoring weights (log-linear)")
        weights_form = QFormLayout(weights)
        self.acoustic_spin = self._weight_spin(r.acoustic_weight)
        self.lm_spin = self._weight_spin(r.lm_weight)
        self.bonus_spin = self._weight_spin(r.word_bonus, low=-5.0)
        weights_form.addRow("Acoustic", self.acoustic_spin)
        weights_form.addRow("N-gram LM", self.lm_spin)
        weights_form.addRow("Word bonus", self.bonus_spin)
        # The chat model's view of the conversation ("What's your name?" makes a name
        # likely); 0 turns it off and frees its memory (~160 MB).
        self.neural_spin = self._weight_spin(r.neural_weight)
        self.neural_spin.setToolTip("How much the chat model's judgement of what you are "
                                    "likely to say next counts (0: off)")
        weights_form.addRow("Chat model", self.neural_spin)
        self.ngram_model = ModelChooser(("ngram-lm",), r.ngram_model)
        form.addRow("Engine", self.engine_combo)
        form.addRow("Model", self.asr_model)
        form.addRow("Alternatives (n-best)", self.nbest_spin)
        form.addRow("Rescoring LM", self.ngram_model)
        form.addRow(weights)
        return page

    @staticmethod
    def _weight_spin(value: float, low: float = 0.0) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(low, 5.0)
        spin.setDecimals(3)
        spin.setSingleStep(0.05)
        spin.setValue(value)
        return spin

    def _engine_changed(self) -> None:
        engine = self.engine_combo.currentData()
        self.asr_model.kinds = (ASR_KINDS[engine],)
        self.asr_model.refresh("")

    def _chat_page(self) -> QWidget:
        c = self.settings.chat
        page = QWidget()
        form = QFormLayout(page)
        self.chat_model = ModelChooser(("chat-lm",), c.model)
        self.prompt_edit = QPlainTextEdit(c.system_prompt)
        self.reply_tokens_spin = QSpinBox()
        self.reply_tokens_spin.setRange(16, 1024)
        self.reply_tokens_spin.setValue(c.max_reply_tokens)
        form.addRow("Model", self.chat_model)
        form.addRow("System prompt", self.prompt_edit)
        form.addRow("Longest reply (tokens)", self.reply_tokens_spin)
        return page

    def _voice_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.voice_model = ModelChooser(VOICE_KINDS, self.settings.tts.voice)
        form.addRow("Voice", self.voice_model)
        self.trained_voices = QComboBox()
        self.trained_voices.addItem("(choose a voice trained in the studio)", "")
        from voicebot.training.dataset import trained_voices

        for voice in trained_voices():
            self.trained_voices.addItem(f"{voice['name']} (step {voice['step']})",
                                        voice["path"])
        self.trained_voices.currentIndexChanged.connect(self._trained_voice_picked)
        form.addRow("Your voices", self.trained_voices)
        return page

    def _trained_voice_picked(self) -> None:
        path = self.trained_voices.currentData()
        if path:
            self.voice_model.refresh(path)  # shown as "(not in the catalog)": a folder

    # ----- result ---------------------------------------------------------------
    def not_installed(self) -> list[str]:
        """Chosen catalog models that are not installed (a folder outside the catalog,
        such as a trained voice, is checked when it loads)."""
        choosers = (self.asr_model, self.ngram_model, self.chat_model, self.voice_model)
        return [row["id"] for row in (c.selected_row() for c in choosers)
                if row is not None and not row["installed"]]

    def accept(self) -> None:
        missing = self.not_installed()
        if missing:
            # Saving it would leave the app without that engine on the next start.
            self.problem.setText("Not installed: " + ", ".join(missing) + ". Download it "
                                 "with its Download button, or choose an installed model.")
            self.problem.show()
            return
        super().accept()

    def result_settings(self) -> Settings:
        """The edited copy (call after the dialog was accepted)."""
        s = self.settings
        s.audio.input_device = self.input_combo.currentData() or ""
        s.audio.output_device = self.output_combo.currentData() or ""
        s.audio.headset_mode = self.headset_box.isChecked()
        s.audio.hands_free = self.hands_free_box.isChecked()
        s.asr.engine = self.engine_combo.currentData()
        s.asr.model = self.asr_model.value() or s.asr.model
        s.asr.nbest = self.nbest_spin.value()
        s.asr.acoustic_weight = self.acoustic_spin.value()
        s.asr.lm_weight = self.lm_spin.value()
        s.asr.word_bonus = self.bonus_spin.value()
        s.asr.neural_weight = self.neural_spin.value()
        s.asr.ngram_model = self.ngram_model.value()
        s.chat.model = self.chat_model.value() or s.chat.model
        s.chat.system_prompt = self.prompt_edit.toPlainText().strip() or s.chat.system_prompt
        s.chat.max_reply_tokens = self.reply_tokens_spin.value()
        s.tts.voice = self.voice_model.value() or s.tts.voice
        return s

    def done(self, result: int) -> None:  # also runs on Esc / window close
        self.level_test.stop()
        super().done(result)
