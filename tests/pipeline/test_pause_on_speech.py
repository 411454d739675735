"""Hands-free barge-in that pauses first: a backchannel (or no words) over the reply lets
it go on, real words interrupt it and are answered. Fake engines, in-memory audio.

Each reply below is several seconds of audio, so it is still being played when the test
pauses it however slow the machine is; nothing asserts on how long anything took.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipeline.fakes import (
    RATE,
    FakeChat,
    FakeRecognizer,
    FakeVoice,
    fake_session,
    wait_until,
)
from voicebot.pipeline.display_state import Phase
from voicebot.pipeline.state import TurnState

S = TurnState
REPLY = "One two three. Four five six. Seven eight nine. Ten eleven."
CHUNKS, CHUNK_S = 5, 0.2  # each clause is 1 s of audio, made in 0.25 s


def _wait(predicate) -> bool:
    return wait_until(predicate, 10.0)


def _speaking(sessions, *heard: str, recognizer=None):
    chat = FakeChat(reply=REPLY, delay=0)
    voice = FakeVoice(chunks=CHUNKS, seconds=CHUNK_S, delay=0.05)
    session, recorder, mic = fake_session(recognizer=recognizer or FakeRecognizer(*heard),
                                          chat=chat, voice=voice)
    sessions.append(session)
    reply = session.submit_text("Count for me.")
    assert _wait(lambda: session.conversation.state is S.SPEAKING)
    return session, recorder, mic, reply, chat, voice


def _talk_over(session, mic, seconds: float = 0.3):
    """Hands-free's start: the reply pauses while the user says something."""
    conversation = session.conversation
    turn = conversation.start_listening(0.0, tentative=True)
    assert turn.tentative and conversation.state is S.PAUSED
    assert session.audio.speaker.paused
    mic.say(np.full(int(seconds * RATE), 0.1, np.float32)).join()
    conversation.stop_listening()
    return turn


def _history(session):
    return [(m["role"], m["content"]) for m in session.conversation.history]


@pytest.mark.parametrize("heard", ["Mm-hmm.", ""])
def test_a_backchannel_or_no_words_lets_the_reply_go_on(sessions, heard):
    session, recorder, mic, reply, chat, voice = _speaking(sessions, heard)
    speaker = session.audio.speaker
    tentative = _talk_over(session, mic)
    assert _wait(lambda: tentative.finished.is_set())
    assert tentative.dropped and tentative.user_text == heard.strip()
    assert not reply.cancelled and reply.heard_clauses is None
    assert reply.finished.wait(10)
    # The same reply, each clause synthesised and queued once, all of it played: it went
    # on from where it paused, nothing was said twice or dropped.
    assert voice.said == ["One two three.", "Four five six.", "Seven eight nine.",
                          "Ten eleven."]
    assert speaker.samples_played == 4 * CHUNKS * int(CHUNK_S * RATE)
    assert speaker.pauses == 1 and not speaker.paused
    # Not a turn: not answered, not in the history, the saved turns or the listener's.
    assert chat.calls == 1
    assert _history(session) == [("user", "Count for me."), ("assistant", REPLY)]
    assert session.conversation.turns == [reply]
    assert _wait(lambda: recorder.finished == [reply]) and recorder.started == [reply]
    assert [t["user"] for t in session.saved_turns] == ["Count for me."]
    # Paused, then speaking again, then idle; the window said so.
    states = recorder.states
    assert states[states.index(S.PAUSED) + 1:] == [S.SPEAKING, S.IDLE]
    paused = [shown for shown in recorder.shown if shown.phase is Phase.PAUSED]
    assert paused and paused[0].pill == "Paused by you"
    assert recorder.shown[-1].phase is Phase.WAITING or recorder.shown[-1].phase is Phase.READY


def test_real_words_interrupt_the_paused_reply_and_are_answered(sessions):
    session, recorder, mic, reply, chat, _voice = _speaking(
        sessions, "what is the capital of france")
    speaker = session.audio.speaker
    question = _talk_over(session, mic)
    assert _wait(lambda: question.finished.is_set())
    assert reply.cancelled and reply.finished.is_set()
    assert not question.dropped and not question.tentative and not question.cancelled
    assert recorder.started == [reply, question]
    assert chat.calls == 2 and not speaker.paused
    # What was heard of the reply: the clauses sent to the voice when it was paused
    # (synthesis went on during the pause; none of that was heard).
    heard = " ".join(reply.spoken[:reply.heard_clauses])
    assert reply.heard_clauses < 4 and REPLY.startswith(heard)
    history = [("user", "Count for me."), ("assistant", heard),
               ("user", "what is the capital of france"), ("assistant", REPLY)]
    assert _history(session) == history
    # The new question was answered knowing what the user had heard.
    assert [(m["role"], m["content"]) for m in chat.histories[1]] == history[:3]
    states = recorder.states
    assert states[states.index(S.PAUSED):] == [S.PAUSED, S.THINKING, S.SPEAKING, S.IDLE]


def test_the_talk_button_or_typing_over_a_pause_interrupts_both(sessions):
    session, recorder, _mic, reply, chat, _voice = _speaking(sessions, "mm-hmm")
    tentative = session.conversation.start_listening(0.0, tentative=True)
    typed = session.submit_text("Stop counting.")
    assert reply.cancelled and tentative.cancelled and not session.audio.speaker.paused
    assert typed.finished.wait(10) and tentative.finished.wait(2)
    assert tentative.dropped and recorder.started == [reply, typed]
    assert chat.calls == 2
    assert [m["content"] for m in session.conversation.history][-2:] == [
        "Stop counting.", REPLY]


def test_stop_and_close_during_a_pause_end_everything(sessions):
    session, _recorder, _mic, reply, _chat, _voice = _speaking(sessions, "mm-hmm")
    tentative = session.conversation.start_listening(0.0, tentative=True)
    session.stop()
    assert reply.cancelled and tentative.cancelled
    assert session.conversation.state is S.IDLE and not session.audio.speaker.paused
    assert reply.finished.wait(2) and tentative.finished.wait(2)
    assert session.conversation.current_turn is reply  # the one the user knows of
    assert _wait(lambda: session.shown.phase is Phase.INTERRUPTED)
    # And a pause still pending when the session closes: bounded by the fixture's close.
    session2, _r, _m, reply2, _c, _v = _speaking(sessions, "mm-hmm")
    session2.conversation.start_listening(0.0, tentative=True)
    assert session2.close(1.5)
    assert reply2.cancelled


def test_push_to_talk_still_interrupts_at_once(sessions):
    session, _recorder, _mic, reply, _chat, _voice = _speaking(sessions, "mm-hmm")
    turn = session.start_listening()
    assert reply.cancelled and not turn.tentative
    assert session.conversation.state is S.LISTENING and not session.audio.speaker.paused


def test_a_dismissed_pause_resumes_at_once(sessions):
    """Hands-free takes a pause back when its quick onset is not confirmed as speech."""
    session, recorder, _mic, reply, chat, _voice = _speaking(sessions, "what is it")
    conversation = session.conversation
    tentative = conversation.start_listening(0.0, tentative=True)
    assert conversation.dismiss(tentative)
    assert conversation.state is S.SPEAKING and not session.audio.speaker.paused
    assert conversation.current_turn is reply and tentative.dropped
    assert not conversation.dismiss(tentative)  # once
    assert tentative.finished.wait(2) and reply.finished.wait(10)
    assert not reply.cancelled and chat.calls == 1 and recorder.started == [reply]
    assert _history(session)[-1] == ("assistant", REPLY)


# ----- through the hands-free monitor -------------------------------------------------
class LoudVad:
    """Speech is loud: a frame whose samples are mostly the test's 0.1 is speech. A VAD
    for the monitor's rules over the test's own blocks of sound and silence."""

    def __init__(self):
        self.pending = np.zeros(0, np.float32)

    def probabilities(self, audio):
        # Whole 512-sample frames; the rest waits for the next block, as in SileroVad.
        audio = np.concatenate([self.pending, audio])
        frames = len(audio) // 512
        self.pending = audio[frames * 512:].copy()
        return [float(np.mean(np.abs(audio[i * 512:(i + 1) * 512])) > 0.05)
                for i in range(frames)]

    def reset(self):
        self.pending = np.zeros(0, np.float32)


def _hands_free(session, mic):
    from voicebot.audio.vad import VoiceActivity
    from voicebot.pipeline.hands_free import HandsFree

    monitor = HandsFree(session.conversation, mic.ring, headset=True, vad=LoudVad(),
                        activity=VoiceActivity(end_ms=300)).start()
    mic.say(np.zeros(int(0.3 * RATE), np.float32)).join()  # its reader is open by now
    return monitor


def _say(mic, *parts):
    """Sound (seconds > 0) and silence (seconds < 0), in order, at the real-time rate."""
    audio = [np.full(int(abs(s) * RATE), 0.1 if s > 0 else 0.0, np.float32) for s in parts]
    mic.say(np.concatenate(audio)).join()


def test_hands_free_a_murmur_pauses_the_reply_and_it_goes_on(sessions):
    session, recorder, mic, reply, chat, _voice = _speaking(sessions, "Mm-hmm.")
    monitor = _hands_free(session, mic)
    try:
        _say(mic, 0.4, -0.6)  # speech (12 frames: a turn's 160 ms and more), then a pause
        assert _wait(lambda: session.audio.speaker.pauses == 1)
        assert reply.finished.wait(10)
    finally:
        assert monitor.stop(2.0)
    assert not reply.cancelled and chat.calls == 1 and recorder.started == [reply]
    assert monitor.turns_started == 1 and session.conversation.turns == [reply]
    assert _history(session) == [("user", "Count for me."), ("assistant", REPLY)]
    assert S.PAUSED in recorder.states


def test_hands_free_a_short_noise_pauses_and_is_taken_back(sessions):
    session, recorder, mic, reply, chat, _voice = _speaking(sessions, "what is it")
    monitor = _hands_free(session, mic)
    try:
        # 0.12 s: three or four frames, whatever their alignment: the quick onset (96 ms)
        # pauses, the turn's rule (160 ms) never confirms.
        _say(mic, 0.12, -0.6)
        assert _wait(lambda: session.audio.speaker.pauses == 1)
        assert reply.finished.wait(10)
    finally:
        assert monitor.stop(2.0)
    assert not reply.cancelled and chat.calls == 1 and recorder.started == [reply]
    assert session.conversation.recognizer.utterances == 0  # nothing was recognised
    assert _history(session)[-1] == ("assistant", REPLY)


def test_hands_free_real_words_over_the_reply_interrupt_it(sessions):
    session, recorder, mic, reply, chat, _voice = _speaking(
        sessions, "what is the capital of france")
    monitor = _hands_free(session, mic)
    try:
        _say(mic, 0.6, -0.6)
        assert _wait(lambda: len(recorder.started) == 2 and recorder.started[1].finished
                     .is_set())
    finally:
        assert monitor.stop(2.0)
    question = recorder.started[1]
    assert reply.cancelled and question.user_text == "what is the capital of france"
    assert chat.calls == 2 and _history(session)[-1] == ("assistant", REPLY)


def test_a_fast_voice_is_remembered_as_far_as_it_was_heard(sessions):
    """A voice much faster than real time queues the whole reply at once; talked over in
    its first clause, the reply is remembered as that clause, not all it queued."""
    chat = FakeChat(reply=REPLY, delay=0)
    voice = FakeVoice(chunks=CHUNKS, seconds=CHUNK_S, delay=0)  # 4 s of audio, at once
    session, _recorder, mic = fake_session(recognizer=FakeRecognizer("stop please"),
                                           chat=chat, voice=voice)
    sessions.append(session)
    reply = session.submit_text("Count for me.")
    # All of it queued (1 s per clause), and the first clause heard for 0.1 s.
    assert _wait(lambda: len(reply.spoken) == 4 and session.audio.speaker.played_s > 0.1)
    question = _talk_over(session, mic)
    assert question.finished.wait(10) and reply.cancelled
    assert reply.heard_clauses == 1
    assert _history(session)[:2] == [("user", "Count for me."), ("assistant", "One two three.")]


class _MurmurRecognizer(FakeRecognizer):
    """Whisper's n-best for Piper's "Mm-hmm." as heard through the virtual devices."""

    def finish(self, nbest=None):
        from voicebot.asr.recognizer import Hypothesis

        self.utterances += 1
        return [Hypothesis("in my mom.", -4.80, engine_rank=1),
                Hypothesis("MMMM", -4.13, engine_rank=2),
                Hypothesis("MMM.", -4.43, engine_rank=3)]


def test_a_murmur_the_rescoring_turns_into_words_still_lets_the_reply_go_on(sessions):
    session, recorder, mic, reply, chat, _voice = _speaking(
        sessions, recognizer=_MurmurRecognizer())
    # As the n-gram ranked them in that run: words before murmurs.
    session.conversation.rescore = lambda hypotheses: hypotheses
    murmur = _talk_over(session, mic)
    assert murmur.finished.wait(10) and murmur.dropped
    assert murmur.user_text == "in my mom."
    assert reply.finished.wait(10) and not reply.cancelled and chat.calls == 1
    assert recorder.started == [reply]
