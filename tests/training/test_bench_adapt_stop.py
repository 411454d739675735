"""Stopping ``bench adapt`` stops its trainer: a killed bench must not leave a training
process running (it kept a core busy and wrote into the next run's folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

# The bench runs a "trainer" that writes its pid to the file named by argv[1] and sleeps.
BENCH = """
import sys
from voicebot.training.bench_adapt import TrainerRun
trainer = f"import os, time; open({sys.argv[1]!r}, 'w').write(str(os.getpid())); time.sleep(120)"
TrainerRun([sys.executable, "-c", trainer], deadline=None).run()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its dead parent's reaper) counts as gone.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


def test_sigterm_to_the_bench_stops_the_trainer(tmp_path):
    pid_file = tmp_path / "trainer.pid"
    bench = subprocess.Popen([sys.executable, "-c", BENCH, str(pid_file)])
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline and bench.poll() is None
        time.sleep(0.1)
    trainer = int(pid_file.read_text())
    assert _alive(trainer)
    bench.send_signal(signal.SIGTERM)
    assert bench.wait(timeout=30) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while _alive(trainer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(trainer)
