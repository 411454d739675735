"""The chat model for real: SmolLM2-135M on the default backend (ONNX Runtime on a CPU)."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest

from voicebot.lm.chat import FALLBACK_REPLY, LocalChatModel
from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.speech_shaping import speakable

COMMON_ENGLISH = {"the", "is", "a", "of", "and", "it", "in", "to", "capital", "france",
                  "paris", "city", "i", "you", "are"}
MARKDOWN = re.compile(r"[*#`]|\[[^\]]*\]\(|^\s*[-+] ", re.MULTILINE)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_a_question_gets_a_plain_english_reply(chat_model):
    reply = chat_model.reply([user("What is the capital of France?")])
    assert reply.strip()
    words = re.findall(r"[a-z']+", reply.lower())
    assert len(words) >= 3 and COMMON_ENGLISH & set(words)
    assert all(ord(ch) < 128 for ch in reply), reply
    assert not MARKDOWN.search(reply), reply
    assert speakable(reply)  # and there is something to say
    assert chat_model.last_stats.stop_reason in ("end", "length")


def test_replies_stream_in_pieces_through_a_worker_thread(chat_model):
    seen_threads = set()
    pieces = []
    for piece in chat_model.stream([user("Tell me about the moon.")]):
        pieces.append(piece)
        seen_threads.add(threading.current_thread().name)
    assert len(pieces) > 3
    assert seen_threads == {threading.current_thread().name}
    assert chat_model.last_stats.new_tokens <= chat_model.max_reply_tokens


def test_a_fact_from_turn_one_is_in_the_prompt_of_turn_three(chat_model):
    history = [user("My name is Ada and my favourite color is green.")]
    history.append(assistant(chat_model.reply(history)))
    history.append(user("What is the capital of Italy?"))
    history.append(assistant(chat_model.reply(history)))
    history.append(user("What is my favourite color?"))
    reply = chat_model.reply(history)
    prompt_text = chat_model.tokenizer.decode(chat_model.last_prompt.ids)
    assert "favourite color is green" in prompt_text
    assert prompt_text.index("green") < prompt_text.index("capital of Italy")
    assert reply
    # The cache of the earlier turns was reused, not computed again.
    assert chat_model.last_stats.reused_tokens > 0.7 * chat_model.last_stats.prompt_tokens


def small_context(chat_model, context_tokens: int) -> LocalChatModel:
    """The session's model with a smaller context: same behaviour, less to compute."""
    return LocalChatModel(chat_model.backend, chat_model.tokenizer,
                          system_prompt=chat_model.system_prompt,
                          max_reply_tokens=chat_model.max_reply_tokens,
                          context_tokens=context_tokens)


def test_fifty_long_turns_never_exceed_the_context(chat_model):
    chat_model = small_context(chat_model, 1024)
    long_user = "I want to tell you about my day in great detail. " * 12
    long_reply = "That sounds like a long and interesting day for you. " * 8
    history: list[dict[str, str]] = []
    for turn in range(50):
        history += [user(f"Turn {turn}. {long_user}"), assistant(long_reply)]
        prompt = chat_model.prompt_for([*history, user("Still there?")])
        assert len(prompt.ids) + chat_model.max_reply_tokens <= chat_model.context_tokens
        assert prompt.messages[0]["role"] == "system"
        assert prompt.messages[-1]["content"] == "Still there?"
    # The context policy keeps only the latest exchanges; the budget is never reached.
    assert len(prompt.messages) <= 2 + 2 * chat_model.policy.max_exchanges
    reply = chat_model.reply([*history, user("Still there?")])
    stats = chat_model.last_stats
    assert reply and stats.prompt_tokens + stats.new_tokens <= chat_model.context_tokens


def test_cancel_stops_within_a_token(chat_model):
    cancel = threading.Event()
    pieces = []
    stream = chat_model.stream([user("Tell me a long story about a dragon and a knight.")],
                               cancel)
    for piece in stream:
        pieces.append(piece)
        if len(pieces) == 3:
            tokens_at_cancel = len(pieces)
            cancel.set()
            cancelled_at = time.perf_counter()
    stopped_after = time.perf_counter() - cancelled_at
    assert len(pieces) == 3  # nothing handed out after the cancel
    stats = chat_model.last_stats
    assert stats.stop_reason == "cancelled"
    # The worker may have been one token ahead of the consumer (pieces may also hold
    # more than one token's text), never more.
    assert stats.new_tokens <= tokens_at_cancel + 2
    assert stopped_after < 0.5


def test_closing_the_stream_early_stops_the_worker(chat_model):
    stream = chat_model.stream([user("Count from one to one hundred.")])
    next(stream)
    stream.close()
    assert chat_model.last_stats.stop_reason == "closed"
    assert chat_model.reply([user("Say hello.")])  # the model is free again


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_an_empty_transcript_does_not_call_the_model(chat_model, text):
    before = chat_model.generations
    assert list(chat_model.stream([user(text)])) == []
    assert list(chat_model.stream([])) == []
    assert chat_model.generations == before


def test_a_ten_thousand_word_transcript_is_cut_and_still_answered(chat_model):
    chat_model = small_context(chat_model, 768)
    rambling = " ".join(["I walked to the market and bought some apples"] * 1000)
    assert len(rambling.split()) >= 9000
    reply = chat_model.reply([user(rambling + " Anyway, what color are apples?")])
    stats = chat_model.last_stats
    assert stats.truncated_user and reply
    assert stats.prompt_tokens + chat_model.max_reply_tokens <= chat_model.context_tokens
    assert "what color are apples?" in chat_model.last_prompt.messages[-1]["content"]


def test_a_model_that_only_says_end_of_turn_gets_the_fallback(chat_model):
    eos = chat_model.tokenizer.eos_token_id

    def only_eos(_generated, logits):
        forced = np.full_like(logits, -np.inf)
        forced[eos] = 0.0
        return forced

    mute = LocalChatModel(chat_model.backend, chat_model.tokenizer,
                          system_prompt=chat_model.system_prompt, max_reply_tokens=20,
                          options=GenerationOptions(logits_processors=(only_eos,)))
    pieces = list(mute.stream([user("Hello?")]))
    assert pieces == [FALLBACK_REPLY]
    assert mute.last_stats.new_tokens == 0 and mute.last_stats.stop_reason == "end"


def test_a_looping_reply_is_stopped_by_the_guard(chat_model):
    ids = chat_model.tokenizer.encode(" yes", add_special_tokens=False)

    def say_yes(_generated, logits):
        forced = np.full_like(logits, -np.inf)
        forced[ids[0]] = 0.0
        return forced

    parrot = LocalChatModel(chat_model.backend, chat_model.tokenizer,
                            system_prompt=chat_model.system_prompt, max_reply_tokens=60,
                            options=GenerationOptions(repetition_penalty=1.0,
                                                      logits_processors=(say_yes,)))
    parrot.reply([user("Hello?")])
    assert parrot.last_stats.stop_reason == "loop"
    assert parrot.last_stats.new_tokens < 20


def test_the_torch_backend_gives_the_same_kind_of_reply_and_reuses_its_cache(chat_model):
    """The CUDA path's code, run on the CPU in float32 (any transformers causal LM)."""
    from voicebot.lm.loading import model_folder
    from voicebot.lm.torch_backend import TorchBackend

    folder, _ = model_folder("smollm2-135m-instruct")
    backend = TorchBackend(folder, device="cpu")
    assert backend.name == "torch-cpu-float32"
    model = LocalChatModel(backend, chat_model.tokenizer,
                           system_prompt=chat_model.system_prompt, max_reply_tokens=10)
    history = [user("What is the capital of France?")]
    first = model.reply(history)
    assert "Paris" in first
    history += [assistant(first), user("And of Italy?")]
    second = model.reply(history)
    assert second and model.last_stats.reused_tokens > 0.8 * model.last_stats.prompt_tokens
    cancel = threading.Event()
    cancel.set()
    assert list(model.stream([user("Tell me a story.")], cancel)) == []
    assert model.last_stats.stop_reason == "cancelled"


def test_a_long_reply_ends_at_a_sentence_end_before_the_cap(chat_model):
    reply = chat_model.reply([user("Tell me everything about the history of Rome.")])
    stats = chat_model.last_stats
    assert stats.new_tokens <= chat_model.max_reply_tokens
    if stats.stop_reason == "length":
        assert reply.rstrip().endswith((".", "!", "?")), reply
