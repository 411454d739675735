"""Twenty turns with the real SmolLM2-135M: the bot keeps its name, remembers the user's,
never says the same reply twice, and a poisoned turn does not spoil the next one.

Greedy decoding (and seeded retries) make every run the same on one machine; the
assertions leave room for another CPU's rounding to change a word here and there.
"""

from __future__ import annotations

import pytest

from voicebot.lm.bench_dialogue import (
    CONVERSATIONS,
    LONG_PASTE,
    is_right,
    normalized,
    other_name,
    run_conversation,
)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.fixture(scope="module")
def tom(chat_model):
    return run_conversation(chat_model, CONVERSATIONS["tom-paris"])


def test_twenty_turns_keep_the_identity(tom):
    assert len(tom) == 20
    identity = [row for row in tom if row["kind"] == "identity"]
    assert len(identity) == 2 and all("voicebot" in row["reply"].lower() for row in identity)
    assert [row["reply"] for row in tom if other_name(row["reply"])] == []


def test_twenty_turns_recall_the_user(tom):
    recall = {row["user"]: row["reply"] for row in tom if row["kind"] == "recall"}
    assert "Tom" in recall["What is my name?"]
    assert "Paris" in recall["Where do I live?"]
    assert "teacher" in recall["What do I do for a living?"]


def test_twenty_turns_never_repeat_a_reply(tom, chat_model):
    replies = [normalized(row["reply"]) for row in tom]
    assert all(replies) and len(set(replies)) == len(replies), replies
    late = [row for row in tom[10:] if row["kind"] == "fact"]
    assert sum(row["right"] for row in late) >= len(late) - 2, late


@pytest.mark.parametrize("poison", [
    "\U0001F600\U0001F389\U0001F44D\U0001F525",
    LONG_PASTE,
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?",
], ids=["emoji", "5000-chars", "cyrillic"])
def test_a_poisoned_turn_does_not_spoil_the_next(chat_model, poison):
    history = [user("Good morning!"), assistant("Good morning! How can I help you today?"),
               user(poison)]
    poisoned_reply = chat_model.reply(history)
    history.append(assistant(poisoned_reply))
    for question, expect in [("What is the capital of France?", ("paris",)),
                             ("What do bees make?", ("honey",))]:
        fresh = chat_model.reply([user(question)])
        reply = chat_model.reply([*history, user(question)])
        assert is_right(fresh, expect), fresh
        assert is_right(reply, expect), (poison[:20], reply)
        assert all(ord(ch) < 0x250 for ch in reply), reply  # English, no emoji echoed
        history += [user(question), assistant(reply)]
    # The poison itself is not in the prompt that answered (a paste at most shortened).
    prompt = chat_model.tokenizer.decode(chat_model.last_prompt.ids)
    assert poison not in prompt and len(prompt) < 2000
    if len(poison) < 100:
        assert poison[:4] not in prompt


def test_a_reply_that_would_repeat_is_generated_again(chat_model):
    question = "What is the capital of Italy?"
    first = chat_model.reply([user(question)])
    again = chat_model.reply([user(question), assistant(first), user(question)])
    assert again and normalized(again) != normalized(first)
    assert chat_model.last_stats.regenerations >= 1


def test_a_normal_reply_is_not_held_back(chat_model):
    """The repeat filter costs nothing when the reply starts unlike any earlier one."""
    history = [user("Tell me about the ocean."),
               assistant("The ocean covers most of the Earth and is full of life."),
               user("What do bees make?")]
    pieces = list(chat_model.stream(history))
    assert len(pieces) > 2 and chat_model.last_stats.regenerations == 0
