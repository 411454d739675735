"""Small stand-ins for the engines, to test the session's own logic in seconds.

They are test doubles for the conductor (who waits for whom, what is cancelled, what is
remembered), not for the models: the end-to-end tests run the real ones. Audio goes
through the real ``PacedMicrophone`` and ``MemorySpeaker``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from voicebot.asr.recognizer import Hypothesis, Partial
from voicebot.audio.memory_io import MemorySpeaker, PacedMicrophone
from voicebot.pipeline.audio_ends import AudioEnds
from voicebot.pipeline.live_session import Session
from voicebot.pipeline.session import Engines
from voicebot.pipeline.session_events import SessionListener
from voicebot.settings import Settings
from voicebot.tts.base import AudioChunk

RATE = 16000


class FakeRecognizer:
    """Hears whatever it is fed as the next of its fixed hypotheses ("" hears nothing)."""

    sample_rate = RATE
    on_partial = None

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts) or ["what is the capital of france"]
        self.fed = 0
        self.utterances = 0

    def feed(self, audio: np.ndarray) -> Partial | None:
        self.fed += len(audio)
        text = self.texts[self.utterances % len(self.texts)]
        return Partial(text.split(" ")[0], "", self.fed / RATE) if text else None

    def finish(self, nbest: int | None = None) -> list[Hypothesis]:
        text = self.texts[self.utterances % len(self.texts)]
        self.utterances += 1
        self.reset()
        return [Hypothesis(text, -1.0), Hypothesis(text + " please", -2.0)] if text else []

    def reset(self) -> None:
        self.fed = 0


@dataclass
class FakeChat:
    """Yields its reply word by word, ``delay`` apart; stops when cancelled."""

    reply: str = "Paris is the capital. It is in France. It is big."
    delay: float = 0.01
    calls: int = 0
    yielded: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    histories: list = field(default_factory=list)

    def stream(self, history, cancel=None):
        self.calls += 1
        self.histories.append(list(history))
        try:
            for i, word in enumerate(self.reply.split(" ")):
                if cancel is not None and cancel.is_set():
                    return
                time.sleep(self.delay)
                self.yielded += 1
                yield word if i == 0 else " " + word
        finally:  # stopped by the token, or closed by the conversation after it was set
            if cancel is not None and cancel.is_set():
                self.cancelled.set()


@dataclass
class FakeVoice:
    """Yields ``chunks`` chunks of quiet noise per clause, ``seconds`` long each, taking
    ``delay`` per chunk; ``fail``: raise this instead of speaking."""

    chunks: int = 2
    seconds: float = 0.1
    delay: float = 0.0
    fail: Exception | None = None
    sample_rate: int = RATE
    said: list = field(default_factory=list)

    def voices(self):
        return []

    def stream(self, text, cancel=None, *, split_first=True):
        if self.fail is not None:
            raise self.fail
        self.said.append(text)
        for _ in range(self.chunks):
            if cancel is not None and cancel.is_set():
                return
            time.sleep(self.delay)
            yield AudioChunk(np.full(int(self.seconds * RATE), 0.01, np.float32), RATE, text)


class FakeVad:
    """Never hears speech (hands-free tests of the session's threads, not of the VAD)."""

    def probabilities(self, audio: np.ndarray) -> list[float]:
        return [0.0] * (len(audio) // 512)

    def reset(self) -> None:
        pass


class Recorder(SessionListener):
    """Everything the session reports, in order."""

    def __init__(self) -> None:
        self.states: list = []
        self.shown: list = []
        self.errors: list[str] = []
        self.notices: list[str] = []
        self.started: list = []
        self.finished: list = []

    def state_changed(self, state):
        self.states.append(state)

    def display_changed(self, shown):
        self.shown.append(shown)

    def turn_started(self, turn):
        self.started.append(turn)

    def turn_finished(self, turn):
        self.finished.append(turn)

    def error(self, turn, message):
        self.errors.append(message)

    def notice(self, text):
        self.notices.append(text)


def fake_engines(recognizer=None, chat=None, voice=None) -> Engines:
    return Engines(recognizer=recognizer or FakeRecognizer(), chat=chat or FakeChat(),
                   synthesizer=voice or FakeVoice(), voice="fake")


def memory_audio() -> tuple[AudioEnds, PacedMicrophone, MemorySpeaker]:
    mic, speaker = PacedMicrophone(RATE), MemorySpeaker()
    return AudioEnds(mic=mic.ring, speaker=speaker), mic, speaker


def fake_session(settings: Settings | None = None, **engines) -> tuple[Session, Recorder,
                                                                        PacedMicrophone]:
    """A started session over fake engines and in-memory audio."""
    recorder = Recorder()
    session = Session(settings or Settings(), recorder, loads_models=False,
                      persist=False, vad=FakeVad())
    audio, mic, _ = memory_audio()
    session.start(fake_engines(**engines), audio)
    return session, recorder, mic


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def speak(session: Session, mic: PacedMicrophone, seconds: float = 0.3):
    """Push to talk, say ``seconds`` of sound, let go; the turn."""
    turn = session.start_listening()
    mic.say(np.full(int(seconds * RATE), 0.1, np.float32)).join()
    time.sleep(0.05)
    session.stop_listening()
    return turn


def open_fake_tab(qtbot):
    """The Conversation tab, as its own window, over fake engines and in-memory audio
    (the view's logic in seconds): (tab, its PacedMicrophone). The caller shuts it down."""
    from voicebot.ui.conversation_tab import ConversationTab

    tab = ConversationTab(Settings(), load_models=False)
    qtbot.addWidget(tab)
    tab.show()
    qtbot.waitExposed(tab)
    audio, mic, _ = memory_audio()
    tab.use_engines(fake_engines(voice=FakeVoice(chunks=3, delay=0.05)), audio)
    return tab, mic


class GuessingRecognizer(FakeRecognizer):
    """A FakeRecognizer that also guesses its final transcript (as Whisper does from its
    last partial after a pause): ``guess_text`` once anything was fed (None: no guess;
    tests change it while the user "speaks")."""

    def __init__(self, *texts: str, guess: str | None = None) -> None:
        super().__init__(*texts)
        self.guess_text = guess

    def guess(self) -> str | None:
        return self.guess_text if self.fed else None
