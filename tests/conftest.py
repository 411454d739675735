"""Test set-up shared by the whole suite.

Every test runs with VOICEBOT_HOME pointing into a temporary folder, so nothing is read
from or written to the real user's directories, and Qt runs offscreen. Converted models
are the exception: they are shared with the user's model folder that the set-up script
prepared (`voicebot models prepare`), so no test repeats a slow conversion.
"""

from __future__ import annotations

import os

import pytest

from voicebot.paths import MODELS_ENV, user_dirs
from voicebot.settings import Settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
SHARED_MODELS_DIR = str(user_dirs().models)


@pytest.fixture(autouse=True)
def voicebot_home(tmp_path, monkeypatch):
    """A fresh, empty voicebot home for each test (models shared, see above)."""
    home = tmp_path / "voicebot-home"
    monkeypatch.setenv("VOICEBOT_HOME", str(home))
    monkeypatch.setenv(MODELS_ENV, SHARED_MODELS_DIR)
    return home


@pytest.fixture(scope="session")
def virtual_audio(tmp_path_factory):
    """A private PulseAudio with a virtual microphone ``vmic`` and speaker ``vspeaker``.

    Started once per test session and stopped at its end (the daemon also dies with the
    test process). Device names are what tests pass to voicebot.audio; the fixture's
    ``inject()`` speaks into the microphone and ``speaker_audio()`` returns what was
    played. See voicebot/audio/virtual_device.py.
    """
    from voicebot.audio.virtual_device import VirtualAudio, pulseaudio_available

    if not pulseaudio_available():
        pytest.skip("the virtual audio devices need PulseAudio: install the Debian packages "
                    "pulseaudio, pulseaudio-utils and libasound2-plugins")
    # VirtualAudio replaces stale FIFOs in its root before the daemon creates them.
    audio = VirtualAudio(root=tmp_path_factory.mktemp("virtual-audio"))
    audio.start()
    yield audio
    audio.stop()


@pytest.fixture(scope="session")
def engines():
    """The default engines (recognizer, n-gram LM, chat model, voice), loaded once."""
    from voicebot.pipeline.session import load_engines

    engines = load_engines(Settings(), device="cpu")
    # The voice's sampling noise off: the same audio for the same text in every run, so
    # what Whisper hears back (the spoken question, the reply) cannot change between runs.
    if hasattr(engines.synthesizer, "set_noise"):
        engines.synthesizer.set_noise(0.0, 0.0)
    return engines


@pytest.fixture(scope="session")
def question_audio(engines):
    """A spoken question, synthesised by the embedded voice (16 kHz mono)."""
    import soxr

    from voicebot.tts.base import collect

    audio, rate = collect(engines.synthesizer.stream("What is the capital of France?"))
    return soxr.resample(audio, rate, 16000).astype("float32")


def pytest_sessionfinish(session, exitstatus):
    """The suite's status, for a run that must leave without terminating PortAudio (a
    stream close stuck on a killed virtual sound server: voicebot.audio.portaudio_life)."""
    from voicebot.audio import portaudio_life

    portaudio_life.exit_status = int(exitstatus)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed while waiting (a ``waitUntil`` or ``wait_until`` that ran out)
    reports where every thread of the process was at that moment: a hang that happens
    once in many CI runs is then diagnosed from that run's output, not guessed at."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and report.failed and call.excinfo is not None \
            and "timeout" in f"{call.excinfo.typename} {call.excinfo.value}".lower():
        report.sections.append(("threads at the failure", _thread_stacks()))


def _thread_stacks() -> str:
    import sys
    import threading
    import traceback

    names = {thread.ident: thread.name for thread in threading.enumerate()}
    parts = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame, limit=10))
        parts.append(f"--- {names.get(ident, ident)}\n{stack}")
    return "\n".join(parts)
