"""The reply starts on the recognizer's guess before the final transcript (fake engines)."""

from __future__ import annotations

import time

import numpy as np

from tests.pipeline.fakes import (
    RATE,
    FakeChat,
    FakeVoice,
    GuessingRecognizer,
    fake_session,
    wait_until,
)
from voicebot.pipeline.speculation import same_words
from voicebot.settings import Settings

FINAL = "what is the capital of france"


def _hold(session, mic, seconds: float = 0.3):
    """Press and say something, without letting go: the turn."""
    turn = session.start_listening()
    mic.say(np.full(int(seconds * RATE), 0.1, np.float32)).join()
    return turn


def _release(session, turn):
    time.sleep(0.05)
    session.stop_listening()
    assert turn.finished.wait(5)


def test_same_words_ignores_case_and_punctuation_only():
    assert same_words("What is the capital of France?", FINAL)
    assert not same_words("What is the capital of Spain?", FINAL)
    assert not same_words("What is the capital", FINAL)
    assert not same_words("", "")


def test_a_guess_that_the_final_transcript_confirms_is_kept(sessions):
    chat = FakeChat(delay=0.01)
    guess = "What is the capital of France?"
    session, _recorder, mic = fake_session(
        recognizer=GuessingRecognizer(FINAL, guess=guess), chat=chat)
    sessions.append(session)
    turn = _hold(session, mic)
    # The reply is under way while the button is still held.
    assert wait_until(lambda: chat.yielded >= 3)
    assert chat.calls == 1 and chat.histories[0][-1] == {"role": "user", "content": guess}
    _release(session, turn)
    assert turn.speculated == "kept" and chat.calls == 1
    assert turn.reply_text == chat.reply  # every piece, none twice
    assert session.conversation.history[-2:] == [
        {"role": "user", "content": FINAL}, {"role": "assistant", "content": chat.reply}]


def test_a_guess_the_final_transcript_contradicts_is_restarted(sessions):
    chat = FakeChat(delay=0.1)  # the guessed reply is still being made at the release
    session, recorder, mic = fake_session(
        recognizer=GuessingRecognizer(FINAL, guess="what is the capital of spain"), chat=chat)
    sessions.append(session)
    turn = _hold(session, mic)
    assert wait_until(lambda: chat.calls == 1)
    _release(session, turn)
    assert turn.speculated == "restarted" and chat.calls == 2
    assert chat.cancelled.is_set()  # the guessed reply was stopped, not left running
    # The reply the user gets answers what they said, from its first word.
    assert chat.histories[1][-1] == {"role": "user", "content": FINAL}
    assert turn.reply_text == chat.reply
    assert recorder.finished == [turn]


def test_more_speech_abandons_the_guess(sessions):
    chat = FakeChat(delay=0.1)  # each reply takes 1.1 s: still going when abandoned
    recognizer = GuessingRecognizer(FINAL, guess="what is")
    session, _recorder, mic = fake_session(recognizer=recognizer, chat=chat)
    sessions.append(session)
    turn = _hold(session, mic)
    assert wait_until(lambda: chat.calls == 1)
    recognizer.guess_text = None  # the user goes on speaking
    assert wait_until(chat.cancelled.is_set)
    recognizer.guess_text = FINAL  # and pauses at the end
    assert wait_until(lambda: chat.calls == 2)
    _release(session, turn)
    assert turn.speculated == "kept" and chat.calls == 2
    assert chat.histories[1][-1]["content"] == FINAL and turn.reply_text == chat.reply


def _clauses(reply: str) -> list[str]:
    from voicebot.lm.speech_shaping import ClauseSplitter

    splitter = ClauseSplitter()
    return [c for c in [*splitter.push(reply), *splitter.flush()] if c.strip()]


def test_a_kept_guess_plays_its_first_clause_spoken_ahead(sessions):
    chat = FakeChat(delay=0.01)
    voice = FakeVoice(chunks=2, seconds=0.1)
    session, _recorder, mic = fake_session(
        recognizer=GuessingRecognizer(FINAL, guess=FINAL), chat=chat, voice=voice)
    sessions.append(session)
    clauses = _clauses(chat.reply)
    assert len(clauses) >= 2
    turn = _hold(session, mic)
    # While the button is held the first clause's first chunk is spoken ahead, and the
    # chat model waits there: the rest of the reply is not made before it is wanted.
    assert wait_until(lambda: voice.said == clauses[:1])
    time.sleep(0.2)
    assert chat.yielded < len(chat.reply.split())
    _release(session, turn)
    assert turn.speculated == "kept" and turn.reply_text == chat.reply
    # Every clause spoken once, in order, and all of it played.
    assert voice.said == clauses and turn.spoken == clauses
    speaker = session.audio.speaker
    assert wait_until(lambda: speaker.samples_played == len(clauses) * 2 * int(0.1 * RATE))


def test_a_restarted_guess_never_plays_what_was_spoken_ahead(sessions):
    chat = FakeChat(delay=0.01)
    voice = FakeVoice(chunks=2, seconds=0.1)
    session, _recorder, mic = fake_session(
        recognizer=GuessingRecognizer(FINAL, guess="what is the capital of spain"),
        chat=chat, voice=voice)
    sessions.append(session)
    clauses = _clauses(chat.reply)
    turn = _hold(session, mic)
    assert wait_until(lambda: voice.said == clauses[:1])  # the guess's first clause
    _release(session, turn)
    assert turn.speculated == "restarted" and chat.calls == 2
    # The voice spoke the reply to the final transcript from its first clause again, and
    # only that reply reached the speaker.
    assert voice.said == clauses[:1] + clauses and turn.spoken == clauses
    speaker = session.audio.speaker
    assert wait_until(lambda: speaker.samples_played == len(clauses) * 2 * int(0.1 * RATE))
    time.sleep(0.2)
    assert speaker.samples_played == len(clauses) * 2 * int(0.1 * RATE)


def test_switched_off_the_reply_waits_for_the_final_transcript(sessions):
    settings = Settings()
    settings.chat.speculative_start = False
    chat = FakeChat(delay=0.01)
    session, _recorder, mic = fake_session(
        settings, recognizer=GuessingRecognizer(FINAL, guess=FINAL), chat=chat)
    sessions.append(session)
    turn = _hold(session, mic)
    time.sleep(0.2)
    assert chat.calls == 0
    _release(session, turn)
    assert turn.speculated is None and chat.calls == 1 and turn.reply_text == chat.reply
