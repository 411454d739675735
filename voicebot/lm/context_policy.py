"""What of a long conversation a small chat model gets to see (GUI-free).

Measured with ``voicebot bench dialogue`` on the embedded SmolLM2-135M: with the whole
history in the prompt, questions late in a conversation were answered right 24 points
less often than the same questions asked alone; the model copied its own earlier
replies (23 of 80 replies were verbatim repeats), took the user's name for its own, and
after one Cyrillic message answered every later question with that message. A small
model does best with a short prompt that holds only what it needs. ``ContextPolicy``
builds it from the full history:

- the system prompt, always, with the user's facts under it (``user_facts``): the name,
  city, job and likes survive however far back they were said;
- the latest exchanges verbatim, at most ``max_exchanges`` and ``history_tokens``;
  older ones are dropped (their facts are in the memory). The window moves
  ``step`` exchanges at a time, so most turns reuse the previous prompt's cache and only
  compute the new message (first token as before);
- no exchange that would teach the model something wrong: a message with no words
  (emoji only), one in another script, a reply in another script or language, a reply
  where the bot gives itself another name, or a reply repeated later (the newest copy
  stays);
- a pasted text (over ``long_chars``) is shortened: in the history to its first
  ``long_chars`` characters, as the current message to its last ``current_chars``;
- the current message if it has no words or is in another script is replaced by a
  short note in English, in the user's voice, so the reply is in English and about that
  (a note in brackets was read back word for word).

``restored_messages`` cleans a history restored from the saved file the same way and
keeps its last ``RESTORED_EXCHANGES`` exchanges plus those where the user stated a fact.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.lm.prompt import TRUNCATION_MARK, Message, normalize_history
from voicebot.lm.repeat_guard import normalized
from voicebot.lm.user_facts import UserFacts, extract_facts, states_a_fact

RESTORED_EXCHANGES = 20
SPEECH, SYMBOLS, SCRIPT, LONG = "speech", "symbols", "script", "long"

# What the model gets instead of a message it cannot read: the user's side, in words.
SYMBOLS_NOTE = "I sent you a few emoji."
SCRIPT_NOTE = "I wrote something in another language. Please answer in English."

_OTHER_NAME = re.compile(r"(?i:\b(?:my name is|my name's|i'm called|i am called))\s+([A-Z][a-z]+)")
# One of these in a reply is enough: the model has switched language ("Bien sûr, my
# friend!" began every later reply once it was in the history).
_FOREIGN = {"bonjour", "merci", "oui", "bien", "sûr", "hola", "gracias", "adiós", "ciao",
            "grazie", "danke", "bonsoir", "salut", "monsieur", "madame", "señor", "señora",
            "aujourd'hui", "très", "amigo", "amiga", "bitte", "guten"}
_ROMANCE = {"je", "suis", "vous", "est", "les", "des", "une", "merci", "bonjour", "oui",
            "estoy", "usted", "gracias", "hola", "muy", "avec", "pour", "c'est", "el", "la",
            "tu", "et", "y", "los", "las", "del", "che", "sono", "ich", "bin", "und", "nicht"}


def _non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(ord(ch) > 0x24F for ch in letters) / len(letters)


def classify(text: str, long_chars: int = 600) -> str:
    """SPEECH, SYMBOLS (no letters or digits), SCRIPT (mostly not the Latin alphabet) or
    LONG (a pasted text)."""
    if not any(ch.isalnum() for ch in text):
        return SYMBOLS
    if _non_latin_share(text) > 0.5:
        return SCRIPT
    if len(text) > long_chars:
        return LONG
    return SPEECH


def reply_is_bad(reply: str, own_name: str | None = None) -> bool:
    """A reply the model should not see again: another script or language, or the bot
    under another name."""
    if _non_latin_share(reply) > 0.3:
        return True
    words = re.findall(r"[a-zà-ÿ']+", reply.lower())
    if words and (sum(word in _ROMANCE for word in words) >= max(2, len(words) // 4)
                  or any(word in _FOREIGN for word in words)):
        return True
    for match in _OTHER_NAME.finditer(reply):
        if own_name is None or match.group(1).lower() != own_name.lower():
            return True
    return False


Exchange = tuple[Message, Message | None]


def _exchanges(messages: Sequence[Message]) -> list[Exchange]:
    """User messages each with the reply that followed (None if none did)."""
    out: list[Exchange] = []
    for message in messages:
        if message["role"] == "user":
            out.append((message, None))
        elif out and out[-1][1] is None:
            out[-1] = (out[-1][0], message)
        # an assistant message with no user message before it is dropped
    return out


@dataclass(frozen=True)
class ContextPolicy:
    max_exchanges: int = 3
    step: int = 3  # the window's start moves this many exchanges at a time
    history_tokens: int = 480
    long_chars: int = 600
    current_chars: int = 400
    keep_facts: bool = True

    def clean(self, exchanges: Sequence[Exchange], own_name: str | None = None
              ) -> list[Exchange]:
        """The exchanges the model may see, oldest first (see the module docstring)."""
        kept: list[Exchange] = []
        later_replies: set[str] = set()
        for user, reply in reversed(exchanges):
            kind = classify(user["content"], self.long_chars)
            if kind in (SYMBOLS, SCRIPT):
                continue
            if reply is not None:
                key = normalized(reply["content"])
                if reply_is_bad(reply["content"], own_name) or key in later_replies:
                    continue
                later_replies.add(key)
            if kind == LONG:
                user = {"role": "user",
                        "content": user["content"][:self.long_chars].rstrip() + " …"}
            kept.append((user, reply))
        kept.reverse()
        return kept

    def window(self, exchanges: Sequence[Exchange],
               count_tokens: Callable[[str], int] | None = None) -> list[Exchange]:
        """The latest exchanges within the limits; the start moves ``step`` at a time."""
        n = len(exchanges)
        start = 0
        if n > self.max_exchanges:
            step = max(1, self.step)
            start = math.ceil((n - self.max_exchanges) / step) * step
        kept = list(exchanges[start:])
        count = count_tokens or (lambda text: len(text) // 4 + 1)
        sizes = [count(u["content"]) + (count(r["content"]) if r else 0) for u, r in kept]
        while len(kept) > 1 and sum(sizes) > self.history_tokens:
            kept.pop(0)
            sizes.pop(0)
        return kept

    def current(self, text: str) -> str:
        """The user's new message as the model gets it."""
        kind = classify(text, self.long_chars)
        if kind == SYMBOLS:
            return SYMBOLS_NOTE
        if kind == SCRIPT:
            return SCRIPT_NOTE
        if kind == LONG:
            return TRUNCATION_MARK + text[-self.current_chars:].lstrip()
        return text

    def facts(self, messages: Sequence[Message]) -> UserFacts:
        return extract_facts(m["content"] for m in messages if m["role"] == "user"
                             and classify(m["content"], self.long_chars) == SPEECH)

    def apply(self, system_prompt: str, history: Sequence[Message], *,
              own_name: str | None = None, tokenizer: Any = None
              ) -> tuple[str, list[Message]]:
        """(system prompt with the user's facts, the messages to render) for ``history``,
        which ends with the user's new message."""
        messages = normalize_history(history)
        if not messages or messages[-1]["role"] != "user":
            return system_prompt, messages  # build_prompt says what is wrong
        older, last = messages[:-1], messages[-1]
        count = None
        if tokenizer is not None:
            def count(text: str) -> int:
                return len(tokenizer.encode(text, add_special_tokens=False))
        kept = self.window(self.clean(_exchanges(older), own_name), count)
        out: list[Message] = []
        for user, reply in kept:
            out.append(user)
            if reply is not None:
                out.append(reply)
        out.append({"role": "user", "content": self.current(last["content"])})
        facts = self.facts(messages) if self.keep_facts else UserFacts()
        if facts:
            system_prompt = f"{system_prompt.strip()} {facts.sentence()}"
        return system_prompt, out


def restored_messages(messages: Sequence[Message], keep: int = RESTORED_EXCHANGES,
                      policy: ContextPolicy | None = None,
                      own_name: str | None = "Voicebot") -> list[Message]:
    """A history read back from disk, cleaned like the prompt's: the last ``keep``
    exchanges, plus older ones where the user stated a fact about themselves."""
    policy = policy or DEFAULT_POLICY
    cleaned = policy.clean(_exchanges(normalize_history(messages)), own_name)
    first_kept = max(0, len(cleaned) - keep)
    out: list[Message] = []
    for index, (user, reply) in enumerate(cleaned):
        if reply is None:
            continue  # a restored turn with no reply teaches nothing
        if index >= first_kept or states_a_fact(user["content"]):
            out += [user, reply]
    return out


DEFAULT_POLICY = ContextPolicy()
