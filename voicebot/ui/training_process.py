"""The training child process, watched from Qt: protocol events and log lines as signals.

A plain ``subprocess.Popen`` in its own session (not QProcess): QProcess kills its child
when the app closes, while the user may choose to keep training in the background. Its
stdout/stderr are read by two daemon threads; signals emitted from them reach the GUI
thread through Qt's queued connections. If the app goes away, the trainer notices the
closed pipe and keeps writing ``progress.jsonl`` in its run folder.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from voicebot.training.progress import parse_line

LOG_TAIL_LINES = 200


def train_command(data: Path, out: Path, *options: str) -> list[str]:
    """The command line of ``voicebot train tts`` for this interpreter or frozen app."""
    prefix = [sys.executable] if getattr(sys, "frozen", False) else \
        [sys.executable, "-m", "voicebot"]
    return [*prefix, "train", "tts", "--data", str(data), "--out", str(out), *options]


class TrainingProcess(QObject):
    event = Signal(dict)  # one progress-protocol event
    log_line = Signal(str)  # stderr, and stdout lines that are not protocol
    finished = Signal(int)  # exit code (negative: killed by that signal)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.proc: subprocess.Popen | None = None
        self.log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        self.cancel_requested = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, command: list[str]) -> None:
        if self.running:
            raise RuntimeError("a training process is already running")
        self.log_tail.clear()
        self.cancel_requested = False
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     errors="replace", start_new_session=True)
        readers = [threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True),
                   threading.Thread(target=self._read_stderr, args=(self.proc,), daemon=True)]
        for reader in readers:
            reader.start()
        threading.Thread(target=self._wait, args=(self.proc, readers), daemon=True).start()

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            record = parse_line(line)
            if record is not None:
                self.event.emit(record)
            elif line.strip():
                self._log(line.rstrip())

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            if line.strip():
                self._log(line.rstrip())

    def _log(self, line: str) -> None:
        self.log_tail.append(line)
        self.log_line.emit(line)

    def _wait(self, proc: subprocess.Popen, readers: list[threading.Thread]) -> None:
        code = proc.wait()
        for reader in readers:
            reader.join(5)
        self.finished.emit(code)

    def cancel(self) -> None:
        """Ask the trainer to save a checkpoint and stop (SIGTERM)."""
        if self.running:
            self.cancel_requested = True
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.running:
            self.proc.kill()

    def detach(self) -> None:
        """Leave the process running on its own (the app is closing)."""
        self.proc = None
