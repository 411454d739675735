"""The reply starts on the recognizer's guess before the final transcript (fake engines)."""

from __future__ import annotations

import time

import numpy as np

from tests.pipeline.fakes import RATE, FakeChat, GuessingRecognizer, fake_session, wait_until
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
