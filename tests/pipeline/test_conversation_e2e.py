"""Spoken turns end to end: virtual microphone -> ASR -> chat LM -> voice -> virtual speaker.

Everything is real: the embedded models, PortAudio devices (the virtual PulseAudio pair),
threads. The checks are on what a user would notice: the words heard, a reply, the reply
audible at the speaker and intelligible, barge-in silencing the bot.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soxr

from voicebot.asr.wer import wer
from voicebot.pipeline.live_session import Session
from voicebot.pipeline.session_events import SessionListener
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings
from voicebot.text.scoring import words_for_scoring

pytestmark = pytest.mark.audio


class Recorder(SessionListener):
    def __init__(self) -> None:
        self.states: list[TurnState] = []
        self.partials: list[str] = []
        self.errors: list[str] = []
        self.finished = threading.Event()

    def state_changed(self, state):
        self.states.append(state)

    def partial_transcript(self, turn, text):
        self.partials.append(text)

    def turn_finished(self, turn):
        self.finished.set()

    def error(self, turn, message):
        self.errors.append(message)


@pytest.fixture
def talk(engines, virtual_audio):
    """A session's conversation on the virtual devices, and the listener recording its
    events."""
    from voicebot.audio.capture import Capture
    from voicebot.audio.player import Player
    from voicebot.pipeline.audio_ends import AudioEnds

    capture = Capture("vmic").start()
    ends = AudioEnds(mic=capture.ring(16000), capture=capture,
                     speaker=Player("vspeaker", latency=0.05).open())
    listener = Recorder()
    session = Session(Settings(), listener, loads_models=False, persist=False)
    session.start(engines, ends)
    yield session.conversation, listener
    assert session.close(3.0), "workers still running after close()"


def _speak_into_mic(virtual_audio, audio: np.ndarray) -> None:
    starts = virtual_audio.inject(audio, 16000)
    # Release 0.6 s after the last word, as a person lets go of the button: with 0.25 s a
    # loaded CI machine's capture lagged and the turn ended on "...capital of Fran".
    time.sleep(max(0.0, starts - time.monotonic()) + len(audio) / 16000 + 0.6)


def _transcribe(engines, audio_48k: np.ndarray) -> str:
    recognizer = engines.recognizer
    recognizer.reset()
    recognizer.feed(soxr.resample(audio_48k, 48000, 16000).astype(np.float32))
    hypotheses = recognizer.finish(1)
    return hypotheses[0].text if hypotheses else ""


def _speech_spans(audio: np.ndarray, rate: int, threshold: float = 0.01) -> np.ndarray:
    """Indices of 10 ms frames whose RMS is above the threshold."""
    frame = rate // 100
    n = len(audio) // frame
    rms = np.sqrt((audio[:n * frame].reshape(n, frame) ** 2).mean(axis=1))
    return np.flatnonzero(rms > threshold)


def test_spoken_question_gets_a_spoken_answer(engines, question_audio, virtual_audio, talk):
    conversation, listener = talk
    speaker_start = virtual_audio.speaker_frames()
    turn = conversation.start_listening()
    _speak_into_mic(virtual_audio, question_audio)
    conversation.stop_listening()
    assert listener.finished.wait(60), "the turn never finished"
    assert not listener.errors, listener.errors
    heard = set(words_for_scoring(turn.user_text))
    assert {"capital", "france"} <= heard, turn.user_text
    assert listener.partials, "no partial transcript while speaking"
    assert turn.reply_text.strip(), "empty reply"
    assert listener.states[:4] == [TurnState.LISTENING, TurnState.RECOGNIZING,
                                   TurnState.THINKING, TurnState.SPEAKING]
    assert listener.states[-1] is TurnState.IDLE
    timing = turn.timing.breakdown()
    for stage in ("asr_ms", "lm_first_token_ms", "tts_first_audio_ms",
                  "voice_to_voice_ms"):
        assert timing.get(stage, -1) >= 0, (stage, timing)

    time.sleep(0.3)  # the tail of the reply leaves the pipe sink
    played, _ = virtual_audio.speaker_audio(speaker_start)
    assert len(_speech_spans(played, 48000)) > 50, "the reply was not audible"
    spoken_text = " ".join(turn.spoken)
    heard_back = _transcribe(engines, played)
    assert wer(spoken_text, heard_back) <= 0.35, (spoken_text, heard_back)
    # The exchange is remembered for the next turn.
    assert conversation.history[-2]["content"] == turn.user_text


def test_barge_in_silences_the_bot_and_listens(engines, question_audio, virtual_audio, talk):
    conversation, listener = talk
    first = conversation.submit_text("Tell me a long story about a dragon and a knight.")
    deadline = time.monotonic() + 30
    while conversation.state is not TurnState.SPEAKING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conversation.state is TurnState.SPEAKING
    time.sleep(0.5)  # let it speak for a moment
    pressed_frames = virtual_audio.speaker_frames()
    pressed_at = time.monotonic()
    second = conversation.start_listening()
    assert first.cancelled and conversation.state is TurnState.LISTENING
    time.sleep(0.6)
    played, t0 = virtual_audio.speaker_audio(pressed_frames)
    loud = _speech_spans(played, 48000)
    last_loud = t0 + (loud[-1] + 1) / 100 if len(loud) else t0
    # Silence within 100 ms of the press (the speaker's own buffering included).
    assert last_loud - pressed_at <= 0.1, last_loud - pressed_at

    _speak_into_mic(virtual_audio, question_audio)
    conversation.stop_listening()
    assert second.finished.wait(60)
    assert {"capital", "france"} <= set(words_for_scoring(second.user_text))
    assert not listener.errors, listener.errors
    # The interrupted reply is remembered as far as its clauses had started playing
    # (Piper is faster than real time: it had queued more than that).
    heard = first.spoken[:first.heard_clauses]
    assert 1 <= len(heard) <= len(first.spoken)
    assert {"role": "assistant", "content": " ".join(c.strip() for c in heard)} \
        in conversation.history


def test_the_voice_leaves_the_other_core_to_the_chat_model(engines):
    """In a conversation the chat model generates while the voice speaks: the voice
    decodes one window at a time there (alone, `voicebot say` uses two)."""
    assert engines.synthesizer.parallel_windows == 1
