"""The "Adapt recognition" step: fine-tune the recogniser on the voice's own takes.

A self-contained page the Training wizard can embed after the voice's recordings exist:
``set_dataset(folder)`` points it at an LJSpeech-layout folder; Start runs
``voicebot train asr`` in a child process (the wizard's ``TrainingProcess``: a plain
Popen in its own session, so closing the app can leave it running, unlike QProcess),
shows steps, loss and held-out WER before/after from the JSON progress lines, cancels
with SIGTERM (the trainer saves first) and resumes. "Use adapted recognition" writes the
adapter's path into ``settings.asr.adapter`` (or "" to switch it off).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from voicebot.asr.lora import AdapterError, read_adapter
from voicebot.settings import load_settings, save_settings
from voicebot.training.asr_train import ADAPTER_DIR, DEFAULT_STEPS
from voicebot.training.run_folder import checkpoint_files
from voicebot.ui.training_process import TrainingProcess

log = logging.getLogger(__name__)

# The run folder inside the voice's folder; not under runs/, which holds voice runs.
RUN_DIR = "asr-adaptation"


def asr_train_command(data: Path, out: Path, *options: str) -> list[str]:
    """``voicebot train asr`` for this interpreter or the frozen app."""
    prefix = [sys.executable] if getattr(sys, "frozen", False) else \
        [sys.executable, "-m", "voicebot"]
    return [*prefix, "train", "asr", "--data", str(data), "--out", str(out), *options]


def _percent(wer: float | None) -> str:
    return "—" if wer is None else f"{100 * wer:.1f} %"


class AsrAdaptPage(QWidget):
    adapter_changed = Signal(str)  # the adapter now in the settings ("" = off)

    def __init__(self, parent: QWidget | None = None, settings_path: Path | None = None):
        super().__init__(parent)
        self.data: Path | None = None
        self.run_dir: Path | None = None
        self.settings_path = settings_path
        self.extra_args: list[str] = []  # e.g. --batch-size for a small machine
        self.wer_before: float | None = None
        self.wer_after: float | None = None
        self.last_event: dict | None = None
        self.process = TrainingProcess(self)
        self.process.event.connect(self.on_event)
        self.process.log_line.connect(self._append_log)
        self.process.finished.connect(self.on_finished)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(
            "Recognition can learn your voice from the same recordings. A fifth of the "
            "takes is kept aside to measure the word error rate before and after."))
        row = QHBoxLayout()
        row.addWidget(QLabel("Steps:"))
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 100_000)
        self.steps_box.setValue(DEFAULT_STEPS)
        row.addWidget(self.steps_box)
        self.start_button = QPushButton("Adapt recognition")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        for button in (self.start_button, self.cancel_button, self.resume_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.progress = QProgressBar()
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.step_label = QLabel("")
        self.wer_label = QLabel("")
        for label in (self.status, self.step_label, self.wer_label):
            layout.addWidget(label)
        self.use_box = QCheckBox("Use adapted recognition")
        layout.addWidget(self.use_box)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(300)
        layout.addWidget(self.log_view, 1)
        self.start_button.clicked.connect(lambda: self.start(resume=False))
        self.resume_button.clicked.connect(lambda: self.start(resume=True))
        self.cancel_button.clicked.connect(self.cancel)
        self.use_box.toggled.connect(self._use_toggled)
        self._refresh()

    # ------------------------------------------------------------------ data
    def set_dataset(self, folder: str | Path, run_dir: str | Path | None = None) -> None:
        """The voice's recordings; the run folder defaults to <folder>/asr-adaptation."""
        self.data = Path(folder)
        self.run_dir = Path(run_dir) if run_dir else self.data / RUN_DIR
        self.wer_before = self.wer_after = None
        self._read_previous_run()
        self._show_setting()
        self._refresh()

    def _show_setting(self) -> None:
        """Tick the switch when the settings already use this run's adapter."""
        current = load_settings(self.settings_path).asr.adapter
        on = bool(current) and self.adapter_dir is not None and \
            Path(current).resolve() == self.adapter_dir.resolve()
        self.use_box.blockSignals(True)
        self.use_box.setChecked(on)
        self.use_box.blockSignals(False)

    @property
    def adapter_dir(self) -> Path | None:
        return self.run_dir / ADAPTER_DIR if self.run_dir else None

    def adapter_ready(self) -> bool:
        try:
            return self.adapter_dir is not None and bool(read_adapter(self.adapter_dir))
        except AdapterError:
            return False

    def _read_previous_run(self) -> None:
        """WER of an earlier (finished or cancelled) run, from its progress.jsonl."""
        log_file = self.run_dir / "progress.jsonl" if self.run_dir else None
        if not log_file or not log_file.is_file():
            return
        for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self._take_wer(record)

    # ------------------------------------------------------------------ actions
    def start(self, resume: bool = False) -> None:
        if self.data is None or self.process.running:
            return
        options = ["--max-steps", str(self.steps_box.value()), *self.extra_args]
        if resume:
            options.append("--resume")
        elif self.run_dir.exists() and checkpoint_files(self.run_dir):
            # A fresh start replaces the previous adaptation (the recordings stay).
            import shutil

            shutil.rmtree(self.run_dir)
            self.wer_before = self.wer_after = None
        self.log_view.clear()
        self.status.setText("Starting…")
        self.process.start(asr_train_command(self.data, self.run_dir, *options))
        self._refresh()

    def cancel(self) -> None:
        self.process.cancel()
        self.status.setText("Cancelling (saving the adapter first)…")
        self._refresh()

    def _use_toggled(self, on: bool) -> None:
        path = str(self.adapter_dir) if on and self.adapter_ready() else ""
        try:
            if path:
                read_adapter(path)  # refuse a folder that is not an adapter
            settings = load_settings(self.settings_path)
            settings.asr.adapter = path
            save_settings(settings, self.settings_path)
        except (OSError, AdapterError) as exc:
            self.status.setText(f"Could not change the settings: {exc}")
            return
        self.status.setText("Adapted recognition is on." if path else
                            "Adapted recognition is off.")
        self.adapter_changed.emit(path)

    # ------------------------------------------------------------------ events
    def _take_wer(self, record: dict) -> None:
        if record.get("event") == "eval":
            if record.get("which") == "before":
                self.wer_before = record.get("wer")
            elif record.get("which") == "after":
                self.wer_after = record.get("wer")
        elif record.get("event") in ("done", "cancelled"):
            self.wer_before = record.get("wer_before", self.wer_before)
            self.wer_after = record.get("wer_after", self.wer_after)

    def on_event(self, record: dict) -> None:
        self.last_event = record
        self._take_wer(record)
        name = record.get("event")
        if name == "start":
            self.progress.setRange(0, int(record.get("max_steps") or 1))
            self.progress.setValue(int(record.get("start_step") or 0))
            self.status.setText(f"Adapting {record.get('base')} on {record.get('device')}: "
                                f"{record.get('train_takes')} takes, "
                                f"{record.get('heldout_takes')} held out")
        elif name == "step":
            self.progress.setValue(int(record["step"]))
            loss = record.get("losses", {}).get("loss")
            eta = record.get("eta_s")
            self.step_label.setText(
                f"Step {record['step']}  ·  loss {loss:.3f}" if loss is not None else
                f"Step {record['step']}")
            if eta is not None:
                self.step_label.setText(self.step_label.text() + f"  ·  {eta:.0f} s left")
        elif name == "eval" and record.get("which") == "before":
            self.status.setText("Measured recognition before adapting; training…")
        elif name in ("done", "cancelled"):
            text = "Done." if name == "done" else \
                f"Cancelled at step {record.get('step')}; the adapter so far is saved " \
                "and can be resumed."
            if self.made_worse():
                # Few takes overfit quickly (measured: 40 steps on 8 takes doubled the
                # held-out WER); say so rather than let the user switch it on blindly.
                text += " It recognises the held-out takes worse than before: better " \
                    "leave it off, or record more takes."
            self.status.setText(text)
        elif name in ("error", "warning"):
            self._append_log(f"{name}: {record.get('message')}")
            if name == "error":
                self.status.setText(f"Error: {record.get('message')}")
        self._refresh()

    def made_worse(self) -> bool:
        return self.wer_before is not None and self.wer_after is not None and \
            self.wer_after > self.wer_before

    def on_finished(self, code: int) -> None:
        if code != 0 and not self.status.text().startswith("Error"):
            tail = "\n".join(list(self.process.log_tail)[-3:])
            self.status.setText(f"The adaptation process stopped (exit {code}). {tail}")
        self._refresh()

    def _append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _refresh(self) -> None:
        running = self.process.running
        has_run = bool(self.run_dir and self.run_dir.exists() and checkpoint_files(self.run_dir))
        self.start_button.setEnabled(self.data is not None and not running)
        self.resume_button.setEnabled(has_run and not running)
        self.cancel_button.setEnabled(running)
        self.steps_box.setEnabled(not running)
        self.use_box.setEnabled(self.adapter_ready() and not running)
        self.wer_label.setText(f"Word error rate on held-out takes: before "
                               f"{_percent(self.wer_before)}, after {_percent(self.wer_after)}")
