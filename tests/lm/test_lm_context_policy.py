"""The context policy for small models, without a model: facts, cleaning, the window,
the repeat filter, the restored history."""

from __future__ import annotations

import pytest

from voicebot.lm.context_policy import (
    LONG,
    SCRIPT,
    SPEECH,
    SYMBOLS,
    SYMBOLS_NOTE,
    ContextPolicy,
    classify,
    restored_messages,
)
from voicebot.lm.identity import assistant_name, identity_answer
from voicebot.lm.repeat_guard import KEEP, REGENERATE, STOP, RepeatFilter, RepeatMemory
from voicebot.lm.user_facts import UserFacts, answer_start, extract_facts, facts_in
from voicebot.settings import DEFAULT_SYSTEM_PROMPT

CYRILLIC = "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(("text", "name", "city"), [
    ("Hi! My name is Tom.", "Tom", None),
    ("my name is tom", "Tom", None),
    ("Hey, call me Sam.", "Sam", None),
    ("I'm Maria, by the way.", "Maria", None),
    ("I am Anna and I am from Berlin.", "Anna", "Berlin"),
    ("My name is Ken and I live in Tokyo.", "Ken", "Tokyo"),
    ("I live in Madrid, Spain.", None, "Madrid, Spain"),
    ("i live in new york", None, "New York"),
    ("I'm from London.", None, "London"),
    ("I moved to San Francisco last year.", None, "San Francisco"),
    ("I'm fine, thanks.", None, None),
    ("I live with my parents.", None, None),
    ("Do I live in Paris?", None, None),  # a question states nothing
])
def test_name_and_city_from_varied_phrasings(text, name, city):
    facts = facts_in(text)
    assert (facts.name, facts.city) == (name, city)


def test_job_and_likes_and_later_statements_win():
    facts = extract_facts(["I'm a teacher.", "I like playing chess.", "I love gardening.",
                           "I like it.", "My name is Tom.", "Actually, call me Tommy.",
                           "I work as a nurse."])
    assert facts == UserFacts(name="Tommy", job="nurse",
                              likes=("playing chess", "gardening"))
    assert "The user's name is Tommy." in facts.sentence()


def test_questions_about_the_user_are_answered_from_the_memory():
    facts = UserFacts(name="Tom", city="Paris", job="teacher", likes=("chess",))
    assert answer_start("What's my name again?", facts) == "Your name is Tom."
    assert answer_start("Do you remember my name?", facts) == "Your name is Tom."
    assert answer_start("Where do I live?", facts) == "You live in Paris."
    assert answer_start("What do I do for a living?", facts) == "You work as a teacher."
    assert answer_start("What do I like?", facts) == "You like chess."
    assert answer_start("What is my name?", UserFacts()) is None
    assert answer_start("What is the capital of France?", facts) is None
    assert assistant_name(DEFAULT_SYSTEM_PROMPT) == "Voicebot"
    assert identity_answer("What is your name?", "Voicebot") == "My name is Voicebot."
    assert identity_answer("What is my name?", "Voicebot") is None


def test_messages_are_classified():
    assert classify("What is the capital of France?") == SPEECH
    assert classify("\U0001F600\U0001F389 !!") == SYMBOLS
    assert classify(CYRILLIC) == SCRIPT
    assert classify("word " * 1000) == LONG


def test_poisoned_exchanges_are_not_shown_to_the_model():
    policy = ContextPolicy(max_exchanges=10)
    history = [user("My name is Ken."), assistant("Nice to meet you, Ken."),
               user("\U0001F600\U0001F600"), assistant("\U0001F600\U0001F600"),
               user("x " * 3000), assistant("The report is long."),
               user(CYRILLIC), assistant(CYRILLIC),
               user("Who are you?"), assistant("My name is Sarah."),
               user("Hi"), assistant("Bien sûr, my friend!"),
               user("\U0001F602")]
    system, messages = policy.apply("You are Voicebot.", history, own_name="Voicebot")
    text = " ".join(m["content"] for m in messages)
    assert "\U0001F600" not in text and "\u041f" not in text
    assert "Sarah" not in text and "Bien" not in text
    assert len(text) < 1000  # the paste is shortened
    assert messages[-1] == user(SYMBOLS_NOTE)
    assert "Ken" in system  # the fact memory


def test_the_window_moves_several_exchanges_at_a_time():
    policy = ContextPolicy(max_exchanges=3, step=3, history_tokens=10_000)
    exchanges = [(user(f"q{i}"), assistant(f"a{i}")) for i in range(10)]
    starts = [policy.window(exchanges[:n])[0][0]["content"] for n in range(1, 11)]
    assert starts == ["q0", "q0", "q0", "q3", "q3", "q3", "q6", "q6", "q6", "q9"]


def feed(memory: RepeatMemory, text: str) -> tuple[str, str]:
    repeat = RepeatFilter(memory)
    out = ""
    for i in range(0, len(text), 3):
        released, verdict = repeat.push(text[i:i + 3])
        out += released
        if verdict != KEEP:
            return out, verdict
    released, verdict = repeat.finish()
    return out + released, verdict


def test_the_repeat_filter_holds_only_what_could_be_a_repeat():
    memory = RepeatMemory(["The capital of France is Paris.", "Hello there.",
                           "Sure! I'm glad you're enjoying your visit to Paris."])
    assert feed(memory, "The capital of Italy is Rome.") == ("The capital of Italy is Rome.",
                                                             KEEP)
    assert feed(memory, "The capital of France is Paris.") == ("", REGENERATE)
    assert feed(memory, "Hello there.") == ("", REGENERATE)
    assert feed(memory, "Hello there, Sam.") == ("Hello there, Sam.", KEEP)
    assert feed(memory, "Hi! I'm glad you're enjoying your visit to Paris. Bye.") \
        == ("Hi!", STOP)
    assert feed(RepeatMemory(), "Anything.") == ("Anything.", KEEP)


def test_a_restored_history_is_trimmed_and_keeps_the_facts():
    messages = [user("My name is Tom."), assistant("Hello Tom!")]
    for i in range(60):
        messages += [user(f"Question number {i}?"), assistant(f"Answer number {i}.")]
    messages += [user("\U0001F600"), assistant("\U0001F600"),
                 user("What is your name?"), assistant("My name is Emily.")]
    restored = restored_messages(messages)
    assert len(restored) == 2 * 21  # the last 20 clean exchanges + the one with the name
    assert restored[:2] == [user("My name is Tom."), assistant("Hello Tom!")]
    text = " ".join(m["content"] for m in restored)
    assert "\U0001F600" not in text and "Emily" not in text
    assert "Question number 59?" in text and "Question number 30?" not in text


def test_a_reply_opening_in_french_is_generated_again():
    assert feed(RepeatMemory(), "Bonjour, my name is Voicebot.") == ("", REGENERATE)
    assert feed(RepeatMemory(), "Bien sûr, my friend!") == ("", REGENERATE)
    assert feed(RepeatMemory(), "Elephants are big.") == ("Elephants are big.", KEEP)
