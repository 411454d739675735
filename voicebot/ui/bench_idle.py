"""`voicebot bench idle`: what the app costs while nobody uses it.

Starts the main window offscreen with the default models loaded (a throwaway
``VOICEBOT_HOME``; the models folder stays the user's), with the virtual microphone
when PulseAudio is installed (so the live plots have a capture to show, as on a user's
machine with a microphone), waits for the models and a settling time, then measures the
whole process for ``--idle-seconds`` in three states:

* ``visible``: the Conversation tab on screen (the plots show the microphone's audio);
* ``other_tab``: the Training tab on screen (the plots are hidden);
* ``minimized``: the window minimised.

For each: ``cpu_percent`` (process CPU time over wall time, in % of one core, psutil),
``rss_mb`` at the end, and ``scope_redraws_per_s`` (frames the audio plots drew).
The virtual devices run in a process of their own (``python -m
voicebot.audio.virtual_device``), so their feeding thread is not counted as the app's.

Qt, torch and the models are imported in :func:`run` only (the CLI loads
:func:`add_arguments` for every `voicebot` invocation).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from voicebot.paths import HOME_ENV, MODELS_ENV, user_dirs
from voicebot.settings import Settings

STATES = ("visible", "other_tab", "minimized")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("idle benchmark")
    group.add_argument("--idle-seconds", type=float, default=60.0, metavar="SECONDS",
                       help="idle: how long each state is measured (default 60)")
    group.add_argument("--idle-settle", type=float, default=5.0, metavar="SECONDS",
                       help="idle: wait this long after the models load, and after each "
                            "change of state, before measuring (default 5)")
    group.add_argument("--idle-no-mic", action="store_true",
                       help="idle: do not start the virtual microphone")
    group.add_argument("--idle-load-timeout", type=float, default=600.0, metavar="SECONDS",
                       help="idle: give up if the models take longer to load")


def _spin(app, seconds: float) -> None:
    """Run the Qt event loop for ``seconds`` (timers fire, nothing else is done)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _measure(app, seconds: float, scope) -> dict:
    import psutil

    process = psutil.Process()
    redraws = scope.redraws if scope is not None else 0
    cpu = process.cpu_times()
    started = time.perf_counter()
    _spin(app, seconds)
    elapsed = time.perf_counter() - started
    cpu_after = process.cpu_times()
    used = (cpu_after.user - cpu.user) + (cpu_after.system - cpu.system)
    drawn = (scope.redraws - redraws) if scope is not None else 0
    return {"cpu_percent": round(100 * used / elapsed, 2),
            "rss_mb": round(process.memory_info().rss / 2**20, 1),
            "scope_redraws_per_s": round(drawn / elapsed, 2),
            "seconds": round(elapsed, 2)}


class _MicProcess:
    """The virtual microphone and speaker in a process of their own, so that feeding the
    microphone (a thread that wakes every few ms) is not counted as the app's idle cost."""

    def __init__(self) -> None:
        import subprocess
        import sys

        self.root = tempfile.mkdtemp(prefix="voicebot-idle-audio-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicebot.audio.virtual_device", "--root", self.root],
            stdout=subprocess.PIPE, text=True)
        self.saved: dict[str, str | None] = {}
        for line in self.proc.stdout:  # "export KEY='value'" lines, then a "# then" line
            if line.startswith("export "):
                key, _, value = line[len("export "):].strip().partition("=")
                self.saved.setdefault(key, os.environ.get(key))
                os.environ[key] = value.strip("'")
            elif line.startswith("# then"):
                break
        if self.proc.poll() is not None:
            raise RuntimeError("the virtual audio devices did not start")

    def stop(self) -> None:
        import shutil

        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.root, ignore_errors=True)


def _start_mic(no_mic: bool) -> _MicProcess | None:
    if no_mic:
        return None
    from voicebot.audio.virtual_device import pulseaudio_available

    if not pulseaudio_available():
        return None
    return _MicProcess()


def run(args: argparse.Namespace) -> dict:

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault(MODELS_ENV, str(user_dirs().models))
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-idle-") as home:
        os.environ[HOME_ENV] = str(Path(home))
        virtual = _start_mic(args.idle_no_mic)
        try:
            return _run(args, virtual)
        finally:
            if virtual is not None:
                virtual.stop()


def _run(args: argparse.Namespace, virtual) -> dict:
    from voicebot.ui.app import create_app
    from voicebot.ui.main_window import MainWindow

    app = create_app(["voicebot"])
    settings = Settings()
    if virtual is not None:
        settings.audio.input_device = "vmic"
        settings.audio.output_device = "vspeaker"
    started = time.perf_counter()
    window = MainWindow(settings, load_models=True)
    window.show()
    ready: list[bool] = []
    conversation = window.conversation_tab
    conversation.engines_ready.connect(lambda: ready.append(True))
    while not ready and time.perf_counter() - started < args.idle_load_timeout:
        _spin(app, 0.1)
    load_s = time.perf_counter() - started
    result: dict = {"benchmark": "idle", "models_loaded": bool(ready),
                    "load_s": round(load_s, 2), "microphone": "vmic" if virtual else None,
                    "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
                    "cpu_count": os.cpu_count(), "states": {}}
    try:
        _spin(app, args.idle_settle)
        scope = getattr(conversation, "scope", None)
        result["scope"] = scope is not None
        for state in STATES:
            if state == "other_tab":
                window.tabs.setCurrentWidget(window.training_tab)
            elif state == "minimized":
                window.tabs.setCurrentWidget(conversation)
                window.showMinimized()
            _spin(app, min(args.idle_settle, 2.0))
            result["states"][state] = _measure(app, args.idle_seconds, scope)
    finally:
        window.showNormal()
        window.close()
        app.processEvents()
    return result
