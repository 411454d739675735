"""The Training tab: a wizard from naming a voice to speaking with it.

name the voice → microphone check → read prompts → dataset summary → train → preview →
"Use this voice". The work happens in GUI-free code (``voicebot.training``): this tab
records, shows and starts things. Training runs in a separate process.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from voicebot.settings import Settings
from voicebot.training.dataset import (
    RECOMMENDED_MINUTES,
    DatasetError,
    DatasetSummary,
    VoiceDataset,
    list_voices,
)
from voicebot.training.prompts import load_prompts
from voicebot.training.recorder import TakeRecorder
from voicebot.training.tts_train import installed_base
from voicebot.ui.training_asr_page import AsrAdaptPage
from voicebot.ui.training_record_pages import MicCheckPage, RecordPage
from voicebot.ui.training_run_pages import PreviewPage, TrainPage

log = logging.getLogger(__name__)

STEPS = ("Name", "Microphone", "Record", "Summary", "Train", "Preview",
         "Adapt recognition")
NAME, MIC, RECORD, SUMMARY, TRAIN, PREVIEW, ADAPT_ASR = range(len(STEPS))


class NamePage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        intro = QLabel("Teach the bot to speak with your voice. You will read short "
                       "sentences aloud; every take is checked, and when there is enough "
                       "speech a voice model is fine-tuned on this computer.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(QLabel("Name of the voice (a new one, or one to continue):"))
        self.name_box = QComboBox()
        self.name_box.setEditable(True)
        self.name_box.lineEdit().setPlaceholderText("e.g. My voice")
        layout.addWidget(self.name_box)
        self.error_label = QLabel("")
        layout.addWidget(self.error_label)
        self.import_button = QPushButton("Import recordings…")
        self.import_button.setToolTip("A folder with LJSpeech metadata.csv + wavs/, or one "
                                      ".txt transcript per .wav")
        row = QHBoxLayout()
        row.addWidget(self.import_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        self.refresh()

    @property
    def line_edit(self) -> QLineEdit:
        return self.name_box.lineEdit()

    def refresh(self) -> None:
        current = self.name_box.currentText()
        self.name_box.clear()
        self.name_box.addItems(list_voices())
        self.name_box.setEditText(current)


class SummaryPage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        layout.addWidget(self.summary_label)
        row = QHBoxLayout()
        self.import_button = QPushButton("Import recordings…")
        self.adapt_button = QPushButton("Adapt recognition…")
        self.adapt_button.setToolTip("Teach the speech recognizer your voice with the same "
                                     "recordings (needs no voice model)")
        self.train_button = QPushButton("Train ▶")
        row.addWidget(self.import_button)
        row.addWidget(self.adapt_button)
        row.addStretch(1)
        row.addWidget(self.train_button)
        layout.addLayout(row)
        # Takes Whisper heard as another sentence: kept out of training until redone.
        self.flagged_label = QLabel("Takes that sound like a different sentence "
                                    "(double-click a recorded one to record it again):")
        self.flagged_list = QListWidget()
        self.keep_button = QPushButton("Keep selected anyway")
        self.keep_button.setToolTip("Whisper misheard: these were read as written")
        flagged_row = QHBoxLayout()
        flagged_row.addWidget(self.keep_button)
        flagged_row.addStretch(1)
        for widget in (self.flagged_label, self.flagged_list):
            layout.addWidget(widget)
        layout.addLayout(flagged_row)
        self.report_view = QPlainTextEdit()
        self.report_view.setReadOnly(True)
        self.report_view.setPlaceholderText("Import reports appear here.")
        layout.addWidget(self.report_view, 1)
        self.show_flagged([])

    def show_flagged(self, takes: list) -> None:
        """List the misread takes (``dataset.Take`` objects), or hide the list."""
        self.flagged_list.clear()
        for take in takes:
            heard = (take.transcript or {}).get("heard") or "no words"
            item = QListWidgetItem(f"{take.id}: “{take.text}” — heard “{heard}”")
            item.setData(Qt.ItemDataRole.UserRole, take.id)
            self.flagged_list.addItem(item)
        for widget in (self.flagged_label, self.flagged_list, self.keep_button):
            widget.setVisible(bool(takes))
        self.flagged_list.setMaximumHeight(22 * min(len(takes), 5) + 8)

    def selected_flagged(self) -> list[str]:
        return [item.data(Qt.ItemDataRole.UserRole)
                for item in self.flagged_list.selectedItems()]


class TrainingTab(QWidget):
    # "Use this voice": a run folder for the conversation to load; it answers through
    # show_voice_result, and only a voice that loaded is written to the settings.
    voice_requested = Signal(str)
    voice_chosen = Signal(str)  # a Tacotron2 run folder that now speaks in conversation
    adapter_chosen = Signal(str)  # the recognition adapter now in the settings ("" = off)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.dataset: VoiceDataset | None = None
        # None: the dataset module's minimum (see voicebot.training.dataset.MIN_MINUTES).
        self.min_minutes: float | None = None
        self.min_takes: int | None = None
        self.app_recognizer = None  # the conversation's recogniser, once it has loaded
        self.recorder = TakeRecorder(settings.audio.input_device, settings.audio.output_device)
        self.prompts = load_prompts("en")
        self.steps_list = QListWidget()
        self.steps_list.addItems([f"{i + 1}. {name}" for i, name in enumerate(STEPS)])
        self.steps_list.setMaximumWidth(150)
        self.steps_list.currentRowChanged.connect(self._on_step_clicked)
        self.name_page = NamePage()
        self.mic_page = MicCheckPage(self.recorder)
        self.record_page = RecordPage(
            self.recorder, self.prompts,
            recognizer_source=lambda: (self.app_recognizer, self.settings.asr))
        self.summary_page = SummaryPage()
        self.train_page = TrainPage()
        self.preview_page = PreviewPage()
        self.preview_page.player = self.recorder
        # The same recordings also adapt recognition to the user's voice (LoRA).
        self.asr_page = AsrAdaptPage()
        self.asr_page.adapter_changed.connect(self._adapter_changed)
        self.pages = QStackedWidget()
        for page in (self.name_page, self.mic_page, self.record_page, self.summary_page,
                     self.train_page, self.preview_page, self.asr_page):
            self.pages.addWidget(page)
        self.back_button = QPushButton("◀ Back")
        self.next_button = QPushButton("Next ▶")
        self.back_button.clicked.connect(lambda: self.go_to(self.pages.currentIndex() - 1))
        self.next_button.clicked.connect(lambda: self.go_to(self.pages.currentIndex() + 1))
        self.name_page.import_button.clicked.connect(lambda: self.import_recordings())
        self.summary_page.import_button.clicked.connect(lambda: self.import_recordings())
        self.summary_page.train_button.clicked.connect(lambda: self.go_to(TRAIN))
        self.summary_page.adapt_button.clicked.connect(lambda: self.go_to(ADAPT_ASR))
        self.summary_page.keep_button.clicked.connect(self._keep_flagged)
        self.summary_page.flagged_list.itemDoubleClicked.connect(self._redo_flagged)
        self.summary_page.flagged_list.setSelectionMode(
            QListWidget.SelectionMode.ExtendedSelection)
        self.record_page.take_saved.connect(self._refresh_summary)
        self.train_page.checkpoint_ready.connect(self.preview_page.set_model_dir)
        self.train_page.sample_ready.connect(self.preview_page.set_sample)
        self.preview_page.voice_chosen.connect(self.use_voice)
        body = QHBoxLayout()
        body.addWidget(self.steps_list)
        body.addWidget(self.pages, 1)
        nav = QHBoxLayout()
        nav.addStretch(1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addLayout(nav)
        self.go_to(NAME)

    # ----- navigation -------------------------------------------------------------
    def _on_step_clicked(self, row: int) -> None:
        if row != self.pages.currentIndex() and row >= 0:
            self.go_to(row)

    def go_to(self, index: int) -> bool:
        """Show page ``index`` if the wizard's state allows it; returns whether it moved."""
        index = max(0, min(index, len(STEPS) - 1))
        current = self.pages.currentIndex()
        if index > NAME and (self.dataset is None or current == NAME) \
                and not self.open_voice():
            self._select_step(current)
            return False
        # Only training waits for enough speech; the preview and recognition adaptation
        # are always reachable (they say themselves what they need).
        if index == TRAIN and index != current and not self._may_train():
            self._select_step(current)
            return False
        page = self.pages.currentWidget()
        if hasattr(page, "deactivate") and index != current:
            page.deactivate()
        self.pages.setCurrentIndex(index)
        self._select_step(index)
        new_page = self.pages.widget(index)
        if hasattr(new_page, "activate"):
            new_page.activate()
        if index == SUMMARY:
            self._refresh_summary()
        self.back_button.setEnabled(index > NAME)
        self.next_button.setEnabled(index < ADAPT_ASR)
        return True

    def _select_step(self, index: int) -> None:
        self.steps_list.blockSignals(True)
        self.steps_list.setCurrentRow(index)
        self.steps_list.blockSignals(False)

    def open_voice(self, name: str | None = None) -> bool:
        name = self.name_page.name_box.currentText() if name is None else name
        try:
            dataset = VoiceDataset.create(name)
        except (DatasetError, OSError) as exc:
            self.name_page.error_label.setText(f"⚠ {exc}")
            return False
        self.name_page.error_label.setText("")
        self.name_page.name_box.setEditText(dataset.name)
        self.dataset = dataset
        self.record_page.set_dataset(dataset)
        self.train_page.set_dataset(dataset)
        self.asr_page.set_dataset(dataset.folder)
        self.preview_page.sample = None
        self.preview_page.set_model_dir(self.train_page.model_dir())
        return True

    # ----- summary ----------------------------------------------------------------
    def set_recognizer(self, recognizer) -> None:
        """The conversation's recogniser: Whisper checks the takes with its model."""
        self.app_recognizer = recognizer

    def summary(self) -> DatasetSummary:
        kwargs = {}
        if self.min_minutes is not None:
            kwargs["min_minutes"] = self.min_minutes
        if self.min_takes is not None:
            kwargs["min_takes"] = self.min_takes
        return self.dataset.summary(**kwargs)

    def _may_train(self) -> bool:
        if self.dataset is None:
            return False
        if self.train_page.running or self.train_page.run_dir is not None:
            return True  # a run exists: watching or resuming it is always allowed
        return self.summary().ready

    def _refresh_summary(self) -> None:
        if self.dataset is None:
            return
        summary = self.summary()
        coverage = ("—" if summary.phoneme_coverage is None
                    else f"{100 * summary.phoneme_coverage:.0f}% of English phonemes, "
                         f"{100 * (summary.diphone_coverage or 0):.0f}% of transitions")
        how = ("adapted from the installed LJSpeech Tacotron2" if installed_base() else
               "adapted from a base voice that training builds once on this computer "
               "from the built-in voice (no download; the first run takes longer)")
        lines = [f"<b>{self.dataset.name}</b>",
                 f"{summary.takes} takes, {summary.minutes:.1f} minutes of speech, "
                 f"{summary.rejected} takes rejected.",
                 f"Coverage: {coverage}."]
        if summary.heldout:
            lines.append(f"Held out for scoring: {summary.heldout} of the {summary.takes} "
                         "takes (every 10th) are never trained on; the finished voice is "
                         "scored on their sentences.")
        elif summary.takes:
            lines.append("Held out for scoring: none yet (every 10th take is, from the "
                         "10th on).")
        if summary.misread:
            one = summary.misread == 1
            lines.append(f"⚠ {summary.misread} take{'' if one else 's'} sound"
                         f"{'s' if one else ''} like a different sentence and "
                         f"{'is' if one else 'are'} left out of training until recorded "
                         "again or kept (below).")
        if self.record_page.checking():
            lines.append("Whisper is still checking the latest takes.")
        lines.append(f"Training needs at least {summary.min_minutes:g} minutes and "
                     f"{summary.min_takes} takes; {RECOMMENDED_MINUTES:g} minutes or more "
                     f"(all the prompts) give a closer voice. The voice will be {how}.")
        if summary.ready:
            lines.append("✔ Enough speech to train.")
        else:
            lines.append(f"Still needed: {summary.missing()}.")
        self.summary_page.summary_label.setText("<br>".join(lines))
        self.summary_page.show_flagged([t for t in self.dataset.takes.values()
                                        if t.misread])
        self.summary_page.train_button.setEnabled(self._may_train())

    def _keep_flagged(self) -> None:
        for take_id in self.summary_page.selected_flagged():
            self.dataset.keep_anyway(take_id)
        self._refresh_summary()

    def _redo_flagged(self, item) -> None:
        take = self.dataset.takes.get(item.data(Qt.ItemDataRole.UserRole))
        if take is not None and take.prompt_index is not None and self.go_to(RECORD):
            self.record_page.show_prompt(take.prompt_index)

    # ----- import -----------------------------------------------------------------
    def import_recordings(self, folder: str | Path | None = None):
        """Import a folder into the current voice; returns the report (None if aborted)."""
        from voicebot.training.importer import import_folder

        if self.dataset is None and not self.open_voice():
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Import recordings")
            if not folder:
                return None
        report = import_folder(Path(folder), self.dataset, self.record_page.checker)
        self.summary_page.report_view.setPlainText(report.text())
        self.record_page.set_dataset(self.dataset)
        self.record_page.check_takes(report.accepted)  # Whisper hears them in the background
        self.go_to(SUMMARY)
        return report

    # ----- the result -------------------------------------------------------------
    def use_voice(self, model_dir: str) -> None:
        """Ask for the voice; the conversation loads it and answers (show_voice_result)."""
        self.preview_page.refresh()
        self.preview_page.info_label.setText(self.preview_page.info_label.text()
                                             + "\nLoading this voice for the conversation…")
        self.voice_requested.emit(model_dir)

    def show_voice_result(self, voice: str, ok: bool, message: str) -> None:
        self.preview_page.refresh()
        self.preview_page.info_label.setText(self.preview_page.info_label.text() + "\n"
                                             + ("✔ " if ok else "✘ ") + message)
        if ok:
            self.voice_chosen.emit(voice)

    def _adapter_changed(self, adapter: str) -> None:
        self.settings.asr.adapter = adapter
        self.adapter_chosen.emit(adapter)

    # ----- closing ----------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask what to do with a running training; False means "do not close"."""
        if not self.train_page.running:
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          "A voice is still training. Keep it training in the background, "
                          "or stop it (a checkpoint is saved either way when it stops)?",
                          parent=self)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is keep:
            self.train_page.process.detach()
            return True
        if box.clickedButton() is stop:
            self.train_page.process.cancel()
            return True
        return False

    def shutdown(self) -> None:
        if self.asr_page.process.running:
            self.asr_page.process.cancel()  # saves a checkpoint: Resume continues it
        self.mic_page.deactivate()
        self.record_page.deactivate()
        self.record_page.shutdown()
        self.recorder.close()
