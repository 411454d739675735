"""The session's conductor logic with fake engines: seconds, no models, no sound system."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tests.pipeline.fakes import (
    FakeChat,
    FakeRecognizer,
    FakeVoice,
    fake_session,
    speak,
    wait_until,
)
from voicebot.pipeline.display_state import Phase
from voicebot.pipeline.state import TurnState
from voicebot.settings import Settings

S = TurnState


def test_a_spoken_turn_goes_through_every_state(sessions, caplog):
    caplog.set_level(logging.INFO, logger="voicebot.pipeline.live_session")
    session, recorder, mic = fake_session()
    sessions.append(session)
    assert session.shown.phase is Phase.READY and session.can_talk
    turn = speak(session, mic)
    assert turn.finished.wait(5)
    assert wait_until(lambda: recorder.finished)
    assert recorder.states == [S.LISTENING, S.RECOGNIZING, S.THINKING, S.SPEAKING, S.IDLE]
    assert recorder.started == [turn]
    assert turn.user_text == "what is the capital of france" and len(turn.hypotheses) == 2
    assert turn.reply_text == "Paris is the capital. It is in France. It is big."
    assert session.conversation.history[-2:] == [
        {"role": "user", "content": turn.user_text},
        {"role": "assistant", "content": turn.reply_text}]
    assert session.saved_turns[-1]["reply"] == turn.reply_text
    phases = [shown.phase for shown in recorder.shown]
    phases = [p for i, p in enumerate(phases) if i == 0 or p is not phases[i - 1]]
    assert phases[-5:] == [Phase.LISTENING, Phase.RECOGNIZING, Phase.THINKING,
                           Phase.SPEAKING, Phase.READY]
    last = recorder.shown[-1]
    assert "first sound after" in last.timing and "recognised in" in last.timing
    assert last.pill == "Ready" and last.status_bar.startswith("Ready: ")
    # The session's records, one INFO line each.
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(line.startswith("session: engines in use: recognizer, chat, voice")
               for line in lines)
    assert any(line.startswith("session: turn 1 (voice) done") and "first sound after"
               in line for line in lines)


def test_barge_in_keeps_only_what_was_heard(sessions):
    # The chat model is far ahead of the voice, and the voice ahead of the speaker: each
    # clause is 1 s of audio made in 0.5 s.
    session, _recorder, _mic = fake_session(
        chat=FakeChat(reply="One two three. Four five six. Seven eight nine. Ten.", delay=0),
        voice=FakeVoice(chunks=5, seconds=0.2, delay=0.1))
    sessions.append(session)
    speaker = session.audio.speaker
    first = session.submit_text("Count for me.")
    # The second clause is being heard (for 1 s), the third already went to the voice.
    assert wait_until(lambda: len(first.spoken) >= 3
                      and speaker.played_s > first.clause_starts[1])
    second = session.start_listening()
    assert first.cancelled and session.conversation.state is S.LISTENING
    assert first.finished.wait(2)
    assert first.reply_text.strip().endswith("Ten.")  # generated ...
    assert len(first.spoken) >= 3  # ... synthesised further ...
    remembered = session.conversation.history[-1]["content"]
    assert remembered == "One two three. Four five six."  # ... but not all heard
    assert session.shown.phase is Phase.LISTENING  # the new turn, not "interrupted"
    session.stop_listening()
    assert second.finished.wait(5)


def test_stop_shows_interrupted_and_the_next_turn_clears_it(sessions):
    session, _recorder, _mic = fake_session(voice=FakeVoice(chunks=5, delay=0.1))
    sessions.append(session)
    first = session.submit_text("Talk to me.")
    assert wait_until(lambda: session.conversation.state is S.SPEAKING)
    session.stop()
    assert first.finished.wait(2)
    assert wait_until(lambda: session.shown.phase is Phase.INTERRUPTED)
    second = session.submit_text("Again.")
    assert wait_until(lambda: second.finished.is_set() and session.shown.phase is Phase.READY)


def test_a_voice_error_cancels_the_chat_model_and_the_next_turn_clears_it(sessions):
    chat = FakeChat(reply=" ".join(["word."] * 200), delay=0.02)  # 4 s if not stopped
    voice = FakeVoice(fail=RuntimeError("the voice broke"))
    session, recorder, _mic = fake_session(chat=chat, voice=voice)
    sessions.append(session)
    started = time.monotonic()
    turn = session.submit_text("Hello")
    assert turn.finished.wait(3)
    assert time.monotonic() - started < 2.0
    assert chat.cancelled.is_set(), "the chat model went on after the voice failed"
    assert chat.yielded < 50
    assert "the voice broke" in turn.error and recorder.errors
    assert wait_until(lambda: session.shown.phase is Phase.ERROR)
    assert session.shown.status == "Problem: RuntimeError: the voice broke"
    # The next turn that works clears the problem.
    voice.fail = None
    chat.reply = "Fine."
    again = session.submit_text("Hello again")
    assert again.finished.wait(3) and again.error is None
    assert wait_until(lambda: session.shown.phase is Phase.READY)
    assert "Problem" not in session.shown.status


def test_an_empty_transcript_goes_back_to_idle(sessions):
    chat = FakeChat()
    session, recorder, mic = fake_session(recognizer=FakeRecognizer(""), chat=chat)
    sessions.append(session)
    turn = speak(session, mic)
    assert turn.finished.wait(5)
    assert wait_until(lambda: recorder.finished)
    assert recorder.states == [S.LISTENING, S.RECOGNIZING, S.IDLE]
    assert chat.calls == 0 and turn.user_text == ""
    assert session.shown.phase is Phase.READY and session.saved_turns == []


def test_close_joins_every_thread_in_time():
    settings = Settings()
    settings.audio.hands_free = True  # the monitor thread too (with a VAD that hears none)
    session, _recorder, _mic = fake_session(
        settings, chat=FakeChat(reply=" ".join(["word."] * 500), delay=0.01),
        voice=FakeVoice(chunks=50, delay=0.05))
    assert session.hands_free is not None and session.shown.phase is Phase.WAITING
    session.submit_text("Tell me a long story.")
    assert wait_until(lambda: session.conversation.state is S.SPEAKING)
    before = set(threading.enumerate())
    started = time.monotonic()
    assert session.close(1.5)
    assert time.monotonic() - started < 1.6
    names = {"hands-free", "turn-1", "speech-1"}
    assert names <= {t.name for t in before}
    assert not [t.name for t in threading.enumerate() if t.name in names]
    assert session.conversation is None and session.audio.speaker is None


def test_typed_only_without_a_microphone(sessions):
    from tests.pipeline.fakes import Recorder, fake_engines
    from voicebot.pipeline.audio_ends import AudioEnds
    from voicebot.pipeline.live_session import Session

    recorder = Recorder()
    session = Session(Settings(), recorder, loads_models=False, persist=False)
    sessions.append(session)
    session.start(fake_engines(), AudioEnds(problems=["No microphone (unplugged)"]))
    assert not session.can_talk and session.can_type
    assert session.start_listening() is None
    assert session.shown.status == "No microphone (unplugged)"
    turn = session.submit_text("Hi")
    assert turn.finished.wait(5) and turn.reply_text  # replies as text, no speaker
    assert turn.spoken == []


def test_a_lost_device_is_shown_and_reopened(sessions, monkeypatch):
    from voicebot.pipeline import live_session
    from voicebot.pipeline.audio_ends import AudioEnds

    reopened = threading.Event()

    def open_devices(settings, on_lost=None):
        reopened.set()
        return AudioEnds(problems=["No microphone (still gone)"])

    monkeypatch.setattr(live_session, "open_devices", open_devices)
    monkeypatch.setattr(live_session, "RECOVER_AFTER_S", 0.05)
    session, recorder, _mic = fake_session()
    sessions.append(session)
    session._device_lost(OSError("the microphone stopped working"))
    phases = [s.phase for s in recorder.shown]
    assert Phase.DEVICE_LOST in phases
    assert "the microphone stopped working" in next(
        s.status for s in recorder.shown if s.phase is Phase.DEVICE_LOST)
    assert reopened.wait(2)
    assert wait_until(lambda: session.shown.phase is Phase.READY)
    assert Phase.RECOVERING in [s.phase for s in recorder.shown]
    assert session.shown.status == "No microphone (still gone)" and session.can_type


def test_a_microphone_at_another_rate_than_the_recognizer_is_refused():
    """Where capture meets recognition the rates are checked: 22.05 kHz samples fed to a
    16 kHz recognizer would be misheard, not rejected."""
    from voicebot.audio.memory_io import MemorySpeaker
    from voicebot.audio.resample import ASR_RATE, TRAINING_RATE
    from voicebot.audio.ring_buffer import RingBuffer
    from voicebot.lm.speech_shaping import ClauseSplitter
    from voicebot.pipeline.conversation import Conversation

    def build(rate):
        return Conversation(chat=FakeChat(), synthesizer=FakeVoice(), player=MemorySpeaker(),
                            splitter_factory=ClauseSplitter, recognizer=FakeRecognizer(),
                            mic=RingBuffer(rate, sample_rate=rate))

    with pytest.raises(ValueError, match="22050 Hz audio but the recognizer expects 16000"):
        build(TRAINING_RATE)
    build(ASR_RATE).close()
