"""PortAudio is never terminated under a stuck stream close (voicebot.audio.portaudio_life).

A close stuck on a dead sound server cannot be produced on demand (3 of 4 runs of the
device-recovery test after the echo tests met it), so a thread that stays inside
``closing()`` stands in for it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import sounddevice as sd

from voicebot.audio import portaudio_life


def _stuck_close() -> tuple[threading.Event, threading.Thread]:
    release, inside = threading.Event(), threading.Event()

    def close() -> None:
        with portaudio_life.closing():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=close, daemon=True)
    thread.start()
    assert inside.wait(5)
    return release, thread


def test_no_reinitialisation_while_a_close_is_stuck(monkeypatch):
    terminated = []
    monkeypatch.setattr(sd, "_terminate", lambda: terminated.append(True))
    monkeypatch.setattr(sd, "_initialize", lambda: None)
    release, thread = _stuck_close()
    assert portaudio_life.closes_in_flight() == 1
    assert portaudio_life.reinitialize(timeout=0.1) is False
    assert terminated == []
    release.set()
    thread.join(5)
    assert portaudio_life.closes_in_flight() == 0
    assert portaudio_life.reinitialize(timeout=0.1) is True
    assert terminated == [True]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)


def test_a_process_with_a_stuck_close_exits_with_its_status():
    result = _run("""
        import threading
        from voicebot.audio import portaudio_life

        def stuck():
            with portaudio_life.closing():
                threading.Event().wait()

        threading.Thread(target=stuck, daemon=True).start()
        import time; time.sleep(0.2)
        portaudio_life.exit_status = 3
        print("done", flush=True)
    """)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "done"
    assert "leaving without terminating PortAudio" in result.stderr


def test_a_process_whose_closes_finished_terminates_normally():
    result = _run("""
        import sys
        from voicebot.audio import portaudio_life
        with portaudio_life.closing():
            pass
        portaudio_life.exit_status = 3  # not used: nothing is stuck
        sys.exit(0)
    """)
    assert result.returncode == 0, result.stderr
    assert "leaving without" not in result.stderr
