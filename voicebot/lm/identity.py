"""The bot keeps the name its system prompt gives it (GUI-free).

SmolLM2-135M, told "You are Voicebot", still says "My name is Sarah", "My name is
Emily", or takes the user's own name after "I'm Maria" (``voicebot bench dialogue``).
``IdentityKeeper`` is a logits processor: when the reply has just written "my name is"
(or "I'm called"), the next tokens are forced to spell the configured name.
It also keeps the bot from taking the user's name ("I'm Maria." after "I'm Maria, by the
way."): after "I'm" the user's name is not allowed. It costs one short decode per token
and changes nothing else in the reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_YOU_ARE = re.compile(r"\byou are ([A-Z][\w-]*)")
# Not "call me": "feel free to call me anytime" must stay as it is.
_TRIGGER = re.compile(r"(?:\bmy name is|\bmy name's|\bi'm called|\bi am called)\s*$",
                      re.IGNORECASE)
_I_AM = re.compile(r"\bI(?:'m| am)\s*$")
_TAIL_TOKENS = 6  # enough tokens to hold the trigger phrase


def assistant_name(system_prompt: str) -> str | None:
    """The name in "You are <Name>, ..." of the system prompt, if any."""
    match = _YOU_ARE.search(system_prompt.replace("You are", "you are", 1))
    if not match or match.group(1).lower() in {"a", "an", "the"}:
        return None
    return match.group(1).rstrip(",.")


class IdentityKeeper:
    """A logits processor (see ``decoding.LogitsProcessor``) for one reply."""

    def __init__(self, tokenizer: Any, name: str, user_name: str | None = None):
        self.tokenizer = tokenizer
        self.name = name
        self.user_name_ids = sorted({
            tokenizer.encode(spelled, add_special_tokens=False)[0]
            for spelled in (user_name, " " + user_name)} if user_name else set())
        self.name_ids: list[int] = []
        self.forcing_from: int | None = None  # len(generated) when the name started

    def __call__(self, generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        if self.forcing_from is not None:
            index = len(generated) - self.forcing_from
            if index < len(self.name_ids) and \
                    list(generated[self.forcing_from:]) == self.name_ids[:index]:
                return _force(logits, self.name_ids[index])
            self.forcing_from = None  # the name is written
        if not generated:
            return logits
        tail = self.tokenizer.decode(list(generated[-_TAIL_TOKENS:]), skip_special_tokens=True)
        if self.user_name_ids and _I_AM.search(tail):
            logits[self.user_name_ids] = -np.inf  # the bot is not the user
            return logits
        if not _TRIGGER.search(tail):
            return logits
        # "my name is " may already end in a space: then the name comes without one.
        spelled = self.name if tail.endswith(" ") else " " + self.name
        self.name_ids = list(self.tokenizer.encode(spelled, add_special_tokens=False))
        self.forcing_from = len(generated)
        return _force(logits, self.name_ids[0])


def _force(logits: np.ndarray, token: int) -> np.ndarray:
    out = np.full_like(logits, -np.inf)
    out[token] = 0.0
    return out


_ASKS_NAME = re.compile(r"\b(?:what(?:'s| is) your name|who are you|what (?:should|do|can) i "
                        r"call you|tell me your name|your name again)\b", re.IGNORECASE)


def identity_answer(question: str, name: str | None) -> str | None:
    """The reply's first sentence when the user asks the bot's name ("My name is
    Voicebot."), or None. SmolLM2-135M answered "I'm Emily." to "What is your name?"
    with "You are Voicebot" in its system prompt: the trigger words of the keeper above
    never came."""
    if name and _ASKS_NAME.search(question):
        return f"My name is {name}."
    return None
