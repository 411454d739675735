"""`voicebot bench audio`: cost of the live audio display while the machine is busy.

Captures through the virtual microphone (started here, fed with real speech in a loop)
or a named input device, draws an :class:`AudioScope` offscreen from a 60 Hz timer, and
runs a CPU-heavy torch model in a parallel thread the whole time, as the app does when
the recogniser works while the user speaks. Reports:

* ``frame_ms_median`` / ``frame_ms_p95``: main-thread time of one display update (drain
  the ring, log-mel, waveform decimation, and Qt's repaint of both plots);
* ``fps``: display updates per second actually achieved;
* ``input_overflows``: PortAudio input overflows plus frames the capture pump lost.

Heavy imports (Qt, torch) happen in :func:`run` only: the CLI loads
:func:`add_arguments` for every `voicebot` invocation.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("audio benchmark")
    group.add_argument("--audio-duration", type=float, default=60.0, metavar="SECONDS",
                       help="audio: how long to capture and draw (default 60)")
    group.add_argument("--audio-device", default=None, metavar="NAME",
                       help="audio: capture from this input device instead of starting the "
                            "virtual microphone")
    group.add_argument("--audio-torch-threads", type=int, default=1, metavar="N",
                       help="audio: threads of the parallel torch model (0 = no model)")
    group.add_argument("--audio-fps", type=int, default=60, metavar="HZ",
                       help="audio: display timer rate (default 60)")


def _speech():
    """Real recorded speech to speak into the virtual microphone, or a tone sweep."""
    import numpy as np

    from voicebot.audio.wav_io import read_wav

    parts = [read_wav(p, sample_rate=16_000).samples for p in sorted(SPEECH_DIR.glob("*.wav"))]
    if parts:
        return np.concatenate(parts), 16_000
    t = np.arange(16_000 * 10) / 16_000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32), 16_000


class _BusyModel:
    """A transformer encoder run in a loop: the "CPU-heavy model" beside the display."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.steps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-torch", daemon=True)

    def start(self, timeout: float = 60.0) -> None:
        """Start the loop and wait for its first step, so the import and the model's
        set-up (which hold the GIL for seconds) happen before anything is measured."""
        if self.threads > 0:
            self._thread.start()
            deadline = time.monotonic() + timeout
            while self.steps == 0 and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        layer = torch.nn.TransformerEncoderLayer(d_model=384, nhead=6, dim_feedforward=1536,
                                                 batch_first=True)
        model = torch.nn.TransformerEncoder(layer, num_layers=4).eval()
        x = torch.randn(1, 300, 384)
        with torch.inference_mode():
            while not self._stop.is_set():
                model(x)
                self.steps += 1


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from voicebot.audio.capture import Capture
    from voicebot.audio.resample import ASR_RATE
    from voicebot.audio.virtual_device import VirtualAudio
    from voicebot.ui.widgets.scope import AudioScope

    duration = float(args.audio_duration)
    virtual = None
    if args.audio_device is None:
        virtual = VirtualAudio(speaker_seconds=1)
        virtual.start()
    busy = _BusyModel(args.audio_torch_threads)
    app = QApplication.instance() or QApplication([])
    try:
        capture = Capture(args.audio_device if virtual is None else "vmic")
        scope = AudioScope()
        scope.resize(900, 500)
        scope.show()
        scope.set_source(capture.ring(ASR_RATE), ASR_RATE, stats=capture.stats)
        app.processEvents()
        speech = _speech() if virtual is not None else None
        busy.start()
        capture.start()
        time.sleep(0.5)  # let the stream reach its steady state before measuring
        frames_before = capture.ring(ASR_RATE).frames_written
        steps_before = busy.steps
        costs: list[float] = []  # wall time of each display update
        drawn: list[bool] = []  # whether the frame had new audio to draw
        cpu_costs: list[float] = []  # the main thread's CPU time for it (excludes waiting
        # for a core or the GIL, so it separates our cost from the machine's load)

        # The frame loop is driven here rather than by a QTimer inside app.exec(): a
        # timer slot returns before Qt paints what it changed, so timing the slot would
        # leave the painting out. Each frame below is the update plus the events it
        # caused (the repaint of both plots), on the main thread, at 60 Hz.
        period = 1.0 / args.audio_fps
        next_text = 0.0
        started = time.perf_counter()
        cpu_started = time.thread_time()
        deadline = started
        while (now := time.perf_counter()) - started < duration:
            if virtual is not None and virtual.wait_mic_idle(0):
                virtual.inject(*speech)
            if now >= next_text:
                scope.update_text()
                next_text = now + 0.25
            start, cpu_start = time.perf_counter(), time.thread_time()
            drew = scope.update_display()
            app.processEvents()
            costs.append(time.perf_counter() - start)
            cpu_costs.append(time.thread_time() - cpu_start)
            drawn.append(drew)
            deadline += period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:  # late: skip the missed ticks (they count against fps), like a timer
                deadline = time.perf_counter()
        elapsed = time.perf_counter() - started
        main_cpu = time.thread_time() - cpu_started
        capture.stop()
        stats = capture.stats()
        captured = (capture.ring(ASR_RATE).frames_written - frames_before) / ASR_RATE
        scope.close()
    finally:
        busy.stop()
        if virtual is not None:
            virtual.stop()
    frame_ms = np.array(costs) * 1000 if costs else np.zeros(1)
    frame_cpu_ms = np.array(cpu_costs) * 1000 if cpu_costs else np.zeros(1)
    # Audio arrives in device-sized bursts, so some frames find nothing new and cost
    # almost nothing; the figures over the frames that drew are reported as well.
    drew = np.array(drawn, dtype=bool) if drawn else np.zeros(1, bool)
    drawn_ms = frame_ms[drew] if drew.any() else np.zeros(1)
    drawn_cpu_ms = frame_cpu_ms[drew] if drew.any() else np.zeros(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "benchmark": "audio",
        "frame_ms_median": round(float(np.median(frame_ms)), 3),
        "frame_ms_p95": round(float(np.percentile(frame_ms, 95)), 3),
        "frame_ms_max": round(float(frame_ms.max()), 3),
        "frame_cpu_ms_median": round(float(np.median(frame_cpu_ms)), 3),
        "frame_cpu_ms_p95": round(float(np.percentile(frame_cpu_ms, 95)), 3),
        "drawn_frame_ms_median": round(float(np.median(drawn_ms)), 3),
        "drawn_frame_ms_p95": round(float(np.percentile(drawn_ms, 95)), 3),
        "drawn_frame_cpu_ms_median": round(float(np.median(drawn_cpu_ms)), 3),
        "drawn_fraction": round(float(drew.mean()), 3),
        "fps": round(len(costs) / elapsed, 2),
        "main_thread_cpu_percent": round(100 * main_cpu / elapsed, 1),
        "target_fps": args.audio_fps,
        "input_overflows": int(stats["input_overflows"] + stats["dropped_frames"]),
        "portaudio_overflows": int(stats["input_overflows"]),
        "pump_dropped_frames": int(stats["dropped_frames"]),
        "captured_seconds": round(captured, 2),
        "duration_s": round(elapsed, 2),
        "device": stats["device"],
        "device_samplerate": stats["samplerate"],
        "device_channels": stats["channels"],
        "capture_error": stats["error"],
        "torch_threads": args.audio_torch_threads,
        "torch_model_steps_per_s": round((busy.steps - steps_before) / elapsed, 2),
        "cpu_count": os.cpu_count(),
        "load_average_1min": load,
        "widget_size": [900, 500],
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }
