"""Turn a conversation into prompt tokens that fit the model's context (GUI-free).

The prompt is the system prompt, as many of the latest turns as fit, and the user's new
message, rendered with the model's own chat template. What does not fit is dropped from
the oldest end, a whole user/assistant exchange at a time, so the prompt never starts with
a reply to a question it no longer shows. The system prompt is never dropped: it is what
keeps the replies short and speakable. A single user message too long for the budget
(a 10-minute monologue) keeps its end, where the question usually is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": "..."}

# What a cut-off user message starts with, so the model knows it is not the whole text.
TRUNCATION_MARK = "… "
# The smallest room left for the user's message after the system prompt.
MIN_USER_TOKENS = 32


class PromptTooLongError(ValueError):
    """The system prompt alone leaves no room for the conversation."""


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    messages: list[Message]  # what was rendered, system prompt first
    dropped_messages: int  # older history messages left out to fit the budget
    truncated_user: bool  # the last user message was cut to fit


def _render(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                        tokenize=True, return_dict=True)["input_ids"]
    return list(ids)


def normalize_history(history: Sequence[Message]) -> list[Message]:
    """Only user/assistant turns with text; a system message in the history is ignored
    (the configured system prompt wins) and roles are checked."""
    out = []
    for i, message in enumerate(history):
        role = message.get("role")
        if role == "system":
            continue
        if role not in ("user", "assistant"):
            raise ValueError(f"history[{i}]: unknown role {role!r}")
        text = str(message.get("content", "")).strip()
        if text:
            out.append({"role": role, "content": text})
    return out


def build_prompt(tokenizer: Any, system_prompt: str, history: Sequence[Message],
                 budget: int) -> Prompt:
    """Prompt token ids for ``history`` (ending with the user's message) in ``budget`` tokens.

    Raises PromptTooLongError when the system prompt leaves no room for a user message,
    and ValueError when the history does not end with a user message.
    """
    turns = normalize_history(history)
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("the conversation must end with a user message")
    system = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() \
        else []
    base = len(_render(tokenizer, system)) if system else 0
    if base + MIN_USER_TOKENS > budget:
        raise PromptTooLongError(
            f"the system prompt takes {base} tokens of the {budget} available for the prompt; "
            "shorten it or raise the context size")

    last = turns[-1]
    older = turns[:-1]
    truncated = False
    ids = _render(tokenizer, [*system, last])
    if len(ids) > budget:
        last = _truncate_user(tokenizer, system, last, budget)
        ids = _render(tokenizer, [*system, last])
        truncated = True

    # Add older turns back, newest first, as long as they fit. Each step renders the
    # whole prompt: templates may add text between messages, so counting messages one by
    # one would be wrong for some models.
    start = len(older)
    while start > 0:
        candidate = start - 1
        # Keep exchanges whole: do not start the kept history with an assistant message.
        while candidate > 0 and older[candidate]["role"] == "assistant":
            candidate -= 1
        trial = _render(tokenizer, [*system, *older[candidate:], last])
        if len(trial) > budget:
            break
        ids, start = trial, candidate
    messages = [*system, *older[start:], last]
    return Prompt(ids=ids, messages=messages, dropped_messages=start,
                  truncated_user=truncated)


def _truncate_user(tokenizer: Any, system: list[Message], message: Message,
                   budget: int) -> Message:
    """The message's last tokens that fit in ``budget`` with the system prompt."""
    overhead = len(_render(tokenizer, [*system, {"role": "user", "content": ""}]))
    mark = len(tokenizer.encode(TRUNCATION_MARK, add_special_tokens=False))
    room = budget - overhead - mark - 2  # the join may merge tokens differently: keep slack
    tokens = tokenizer.encode(message["content"], add_special_tokens=False)
    text = tokenizer.decode(tokens[-room:], skip_special_tokens=True).lstrip()
    for _ in range(8):  # re-tokenising can come out a token or two longer; trim until it fits
        candidate = {"role": "user", "content": TRUNCATION_MARK + text}
        if len(_render(tokenizer, [*system, candidate])) <= budget:
            return candidate
        text = text.split(" ", 1)[-1]
    raise PromptTooLongError("could not fit the user's message into the prompt")
