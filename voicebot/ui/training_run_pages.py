"""Wizard pages for the training run: start/cancel/resume with live plots, and preview."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from voicebot.training.dataset import VoiceDataset
from voicebot.training.run_folder import RunLock, checkpoint_files
from voicebot.training.tts_train import DEFAULT_FINE_TUNE_STEPS, MODEL_FILE
from voicebot.ui.training_process import TrainingProcess, train_command

log = logging.getLogger(__name__)

CURVES = (("loss", "total", "w"), ("decoder_loss", "decoder", "c"),
          ("postnet_loss", "postnet", "y"), ("stopnet_loss", "stop token", "m"))
# A run may first build the base voice (once per machine, from the embedded voice), then
# learn the user's: events say which with "phase". Its loss gets a curve of its own.
BASE_PHASE, FINE_TUNE_PHASE = "base", "fine-tune"
PHASE_TEXT = {BASE_PHASE: "Building the base voice (one time)…",
              FINE_TUNE_PHASE: "Learning your voice…"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def missing_vocoder() -> str | None:
    """The vocoder trained voices speak through in conversation, if it is not installed."""
    from voicebot.models import resolve
    from voicebot.tts.voices import DEFAULT_VOCODER

    try:
        resolve(DEFAULT_VOCODER)
    except Exception:  # not installed, or no model store
        return DEFAULT_VOCODER
    return None


def run_scores(run_dir: Path) -> str | None:
    """The run's self-scores in plain words (best checkpoint, held-out takes), if scored."""
    import json

    try:
        best = json.loads((Path(run_dir) / "best.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wer, similarity = best.get("roundtrip_wer"), best.get("similarity")
    base = best.get("base_similarity")
    lines = [f"How good is it? (step {best.get('step')}, on your held-out sentences, "
             "which training never used)"]
    if wer is not None:
        lines.append(f"• Intelligible: Whisper understood {100 * (1 - wer):.0f}% of the words.")
    if similarity is not None:
        lines.append(f"• Sounds like you: {similarity:.2f}"
                     + (f" (the starting voice: {base:.2f})" if base is not None else "")
                     + " — 1.0 would be you; your own takes score about 0.9.")
    if best.get("verdict"):
        lines.append(str(best["verdict"]))
    return "\n".join(lines)


def latest_run(dataset: VoiceDataset) -> Path | None:
    """The newest run folder of the voice that holds a checkpoint."""
    runs = [p for p in dataset.runs_dir.glob("*") if p.is_dir() and checkpoint_files(p)]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


class TrainPage(QWidget):
    checkpoint_ready = Signal(str)  # the run folder, usable as a voice
    sample_ready = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dataset: VoiceDataset | None = None
        self.run_dir: Path | None = None
        self.extra_args: list[str] = []  # e.g. a batch size for small machines
        self.process = TrainingProcess(self)
        self.process.event.connect(self.on_event)
        self.process.log_line.connect(self._append_log)
        self.process.finished.connect(self.on_finished)
        self.max_steps = DEFAULT_FINE_TUNE_STEPS
        self.last_event: dict | None = None
        self.phase: str | None = None
        self.steps: list[int] = []  # fine-tuning steps (and runs that name no phase)
        self.losses: dict[str, list[float]] = {key: [] for key, *_ in CURVES}
        self.base_steps: list[int] = []
        self.base_losses: list[float] = []
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Steps:"))
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 1_000_000)
        self.steps_box.setValue(self.max_steps)
        row.addWidget(self.steps_box)
        self.start_button = QPushButton("Start training")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        for button in (self.start_button, self.cancel_button, self.resume_button):
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.phase_label = QLabel("")
        self.phase_label.setStyleSheet("font-weight:bold;")
        layout.addWidget(self.phase_label)
        self.status_label = QLabel("Not started.")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.progress_bar = QProgressBar()
        layout.addWidget(self.progress_bar)
        self.rate_label = QLabel("")
        layout.addWidget(self.rate_label)
        self.plot = pg.PlotWidget(title="Training loss")
        self.plot.setLabel("bottom", "step")
        self.plot.addLegend()
        self.plot.setClipToView(True)
        self.curves = {key: self.plot.plot([], [], name=name, pen=pen)
                       for key, name, pen in CURVES}
        self.base_curve = self.plot.plot(
            [], [], name="base voice (total)",
            pen=pg.mkPen((160, 160, 160), width=1, style=Qt.PenStyle.DashLine))
        layout.addWidget(self.plot, 2)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        layout.addWidget(self.log_view, 1)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self._update_buttons()

    def set_dataset(self, dataset: VoiceDataset) -> None:
        self.dataset = dataset
        self.run_dir = latest_run(dataset)
        self._update_buttons()

    @property
    def running(self) -> bool:
        return self.process.running

    def _update_buttons(self) -> None:
        running = self.process.running
        # A run left training in the background when the app closed holds its lock.
        elsewhere = (not running and self.run_dir is not None
                     and RunLock(self.run_dir).held_elsewhere())
        if elsewhere:
            self.status_label.setText(f"A training run is still going on in the background "
                                      f"in {self.run_dir} (its progress is in "
                                      "progress.jsonl there).")
        self.start_button.setEnabled(not running and self.dataset is not None)
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(not running and not elsewhere
                                      and self.run_dir is not None
                                      and bool(checkpoint_files(self.run_dir)))

    def _threads(self) -> str:
        # Leave a core to the app (ARCHITECTURE.md, CPU thread budget).
        return str(max(1, (os.cpu_count() or 2) - 1))

    def start(self) -> None:
        run = self.dataset.runs_dir / time.strftime("run-%Y%m%d-%H%M%S")
        self._launch(run, resume=False)

    def resume(self) -> None:
        if self.run_dir is not None:
            self._launch(self.run_dir, resume=True)

    def _launch(self, run_dir: Path, resume: bool) -> None:
        self.run_dir = run_dir
        self.max_steps = self.steps_box.value()
        options = ["--max-steps", str(self.max_steps), "--threads", self._threads(),
                   *self.extra_args]
        if resume:
            options.append("--resume")
        else:
            self.steps.clear()
            for values in self.losses.values():
                values.clear()
            self.base_steps.clear()
            self.base_losses.clear()
            self.phase = None
            self.phase_label.setText("")
        self.process.start(train_command(self.dataset.folder, run_dir, *options))
        self.status_label.setText("Starting the training process…")
        self._append_log(f"$ voicebot train tts --data {self.dataset.folder} --out {run_dir} "
                         + " ".join(options))
        self._update_buttons()

    def cancel(self) -> None:
        self.status_label.setText("Cancelling: saving a checkpoint…")
        self.process.cancel()

    def _set_phase(self, phase: object) -> None:
        if phase in PHASE_TEXT and phase != self.phase:
            self.phase = str(phase)
            self.phase_label.setText(PHASE_TEXT[self.phase])

    def on_event(self, event: dict) -> None:
        self.last_event = event
        kind = event.get("event")
        self._set_phase(event.get("phase"))
        if kind == "corpus":
            # The base voice's practice speech, spoken by the embedded voice.
            done, total = int(event.get("done") or 0), int(event.get("total") or 0)
            if total:
                self.progress_bar.setRange(0, total)
                self.progress_bar.setValue(min(done, total))
            self.rate_label.setText(f"Practice speech for the base voice: {done} of {total} "
                                    f"sentences ({float(event.get('minutes') or 0):.1f} min)"
                                    + (f" · ETA {format_eta(event['eta_s'])}"
                                       if event.get("eta_s") is not None else ""))
        elif kind == "start":
            self.max_steps = int(event.get("max_steps") or self.max_steps)
            self.progress_bar.setRange(0, self.max_steps)
            self.progress_bar.setValue(int(event.get("start_step", 0)))
            what = ("practice sentences spoken by the built-in voice"
                    if event.get("phase") == BASE_PHASE else "takes")
            heldout = (f", {event['heldout']} more held out for scoring"
                       if event.get("heldout") else "")
            self.status_label.setText(
                f"Training on {event.get('takes')} {what} ({event.get('minutes')} min"
                f"{heldout}) on {event.get('device')} ({event.get('precision')}), from "
                f"{event.get('base')}, step {event.get('start_step')} of {self.max_steps}.")
        elif kind == "warning":
            self._append_log("⚠ " + str(event.get("message")))
            self.status_label.setText(self.status_label.text() + "\n⚠ "
                                      + str(event.get("message")))
        elif kind == "step":
            self._on_step(event)
        elif kind == "checkpoint":
            self._append_log(f"checkpoint at step {event.get('step')}: {event.get('path')}")
            if event.get("phase") != BASE_PHASE:  # the base is not the user's voice
                self.checkpoint_ready.emit(str(event.get("model_path")))
        elif kind == "sample":
            if event.get("phase") != BASE_PHASE:
                self.sample_ready.emit(str(event.get("path")))
        elif kind == "scores":
            self._append_log(f"scored at step {event.get('step')}: {event.get('verdict')}")
            if self.run_dir is not None:  # the Preview page re-reads the scores
                self.checkpoint_ready.emit(str(self.run_dir))
        elif kind == "done" and event.get("phase") == BASE_PHASE:
            self.status_label.setText("The base voice is ready (built once, kept for later "
                                      "voices); now learning your voice…")
        elif kind in ("cancelled", "done"):
            self.status_label.setText(
                f"{'Cancelled' if kind == 'cancelled' else 'Finished'} at step "
                f"{event.get('step')}; checkpoint saved.")
        elif kind == "error":
            self.status_label.setText("✘ " + str(event.get("message")))

    def _on_step(self, event: dict) -> None:
        step = int(event["step"])
        self.progress_bar.setRange(0, self.max_steps)
        self.progress_bar.setValue(min(step, self.max_steps))
        if event.get("phase") == BASE_PHASE:
            total = (event.get("losses") or {}).get("loss")
            self.base_steps.append(step)
            self.base_losses.append(float("nan") if total is None else float(total))
            self.base_curve.setData(self.base_steps, self.base_losses, connect="finite")
            self._show_rate(step, event)
            return
        self.steps.append(step)
        losses = event.get("losses") or {}
        for key, values in self.losses.items():
            value = losses.get(key)
            values.append(float("nan") if value is None else float(value))
        for key, curve in self.curves.items():
            curve.setData(self.steps, self.losses[key], connect="finite")
        self._show_rate(step, event)

    def _show_rate(self, step: int, event: dict) -> None:
        total_eta = event.get("total_eta_s")
        align = event.get("align_score")
        self.rate_label.setText(f"step {step} / {self.max_steps} · "
                                f"{event.get('steps_per_s', 0):.2f} steps/s · ETA "
                                f"{format_eta(event.get('eta_s'))}"
                                + (f" (all: {format_eta(total_eta)})"
                                   if total_eta is not None and total_eta != event.get("eta_s")
                                   else "")
                                + (f" · alignment {align:.2f}" if align is not None else "")
                                + (f" · GPU {event['gpu_mem_mb']:.0f} MB"
                                   if event.get("gpu_mem_mb") else ""))

    def on_finished(self, code: int) -> None:
        last = (self.last_event or {}).get("event")
        if code != 0 and last not in ("error",):
            tail = "\n".join(list(self.process.log_tail)[-8:])
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            saved = self.run_dir is not None and bool(checkpoint_files(self.run_dir))
            then = ("Press Resume to continue from the last checkpoint." if saved else
                    "No checkpoint had been saved yet: start again.")
            self.status_label.setText(f"✘ The training process {how}. {then}\n{tail}")
        self._update_buttons()

    def _append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def model_dir(self) -> Path | None:
        if self.run_dir is not None and (self.run_dir / MODEL_FILE).is_file():
            return self.run_dir
        return None


class PreviewPage(QWidget):
    voice_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sample: Path | None = None
        self.model_dir: Path | None = None
        self.player = None  # set by the tab: something with play(samples, rate)
        layout = QVBoxLayout(self)
        self.info_label = QLabel("No checkpoint yet: train first.")
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        row = QHBoxLayout()
        self.play_button = QPushButton("▶ Play the latest preview")
        self.use_button = QPushButton("Use this voice")
        row.addWidget(self.play_button)
        row.addWidget(self.use_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        self.play_button.clicked.connect(self.play)
        self.use_button.clicked.connect(self.use_voice)
        self.refresh()

    def set_model_dir(self, path: str | Path | None) -> None:
        self.model_dir = Path(path) if path else None
        if self.model_dir is not None and self.sample is None:
            samples = sorted((self.model_dir / "samples").glob("step_*.wav"))
            self.sample = samples[-1] if samples else None
        self.refresh()

    def set_sample(self, path: str | Path) -> None:
        self.sample = Path(path)
        self.refresh()

    def refresh(self) -> None:
        has_model = self.model_dir is not None and (self.model_dir / MODEL_FILE).is_file()
        self.use_button.setEnabled(has_model)
        self.play_button.setEnabled(self.sample is not None and self.sample.is_file())
        parts = []
        if has_model:
            parts.append(f"Latest checkpoint: {self.model_dir}")
            vocoder = missing_vocoder()
            if vocoder is not None:
                parts.append(f"To speak in conversation this voice needs the HiFi-GAN "
                             f"vocoder: voicebot models download {vocoder} (previews "
                             "here fall back to Griffin-Lim, which sounds buzzy).")
        if self.sample is not None:
            parts.append(f"Latest preview: {self.sample.name}")
        scores = run_scores(self.model_dir) if has_model else None
        if scores:
            parts.append(scores)
        self.info_label.setText("\n".join(parts) or "No checkpoint yet: train first.")

    def play(self) -> None:
        from voicebot.audio.wav_io import read_wav

        if self.sample is None or self.player is None:
            return
        data = read_wav(self.sample)
        self.player.play(data.samples, data.sample_rate)

    def use_voice(self) -> None:
        if self.model_dir is not None:
            self.voice_chosen.emit(str(self.model_dir))
