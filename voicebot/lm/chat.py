"""The chat model: a conversation in, a streamed spoken-style reply out (GUI-free).

``ChatModel`` is what the pipeline talks to. ``LocalChatModel`` implements it on top of a
backend (ONNX Runtime on the CPU, torch on CUDA or as the fallback) and adds what makes a
small local model usable in a voice conversation:

- the system prompt from the settings, always first (see ``prompt``);
- a context made for small models (``context_policy``): the latest exchanges only, the
  user's own facts under the system prompt, no poisoned or repeated turns; then the
  token budget: the context minus room for the reply, oldest turns dropped first, an
  over-long user message cut to its end;
- a question about what the memory holds ("What's my name?", "Where do I live?", "What
  is your name?") gets its first sentence from the memory (``user_facts.answer_start``,
  ``identity.identity_answer``) and the model goes on from there: SmolLM2-135M cannot
  tell "my" from "your" however the facts are put in the prompt;
- the bot's name from the system prompt kept (``identity``), and no reply or stock
  sentence said twice (``repeat_guard``): a reply that would repeat one, or opens in
  French or Spanish, is generated again, sampled with another seed and its first token
  banned, at most ``REPEAT_RETRIES`` times (measured: 9 of 80 turns of ``bench
  dialogue``; such a turn's first token comes a try later);
- the reply capped at ``max_reply_tokens`` and stopped at the model's end-of-turn token;
  past 60% of the cap it ends at the next sentence end, so speech never stops mid-way
  unless one sentence is longer than the rest of the budget;
- cancel: checked before every token (and between prompt chunks), so a barge-in stops
  generation within one token;
- a loop guard that ends a reply repeating itself;
- a fallback sentence when the model says nothing, so the user always hears an answer.

Generation runs in a worker thread that hands text pieces to the caller through a queue,
so the model keeps generating while the caller is busy with the previous piece.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from voicebot.cancel import CancelToken
from voicebot.lm.backend import Backend
from voicebot.lm.context_policy import DEFAULT_POLICY, ContextPolicy
from voicebot.lm.decoding import GenerationOptions, LoopGuard, TextStream, choose_token
from voicebot.lm.identity import IdentityKeeper, assistant_name, identity_answer
from voicebot.lm.prompt import Message, Prompt, build_prompt, normalize_history
from voicebot.lm.repeat_guard import KEEP, REGENERATE, RepeatFilter, RepeatMemory, normalized
from voicebot.lm.user_facts import answer_start

log = logging.getLogger(__name__)

# A reply that ends here has finished a sentence (closing quotes/brackets allowed).
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s*$")
_CLAUSE_END = re.compile(r"[,;:]\s*$")
# Past this share of the reply cap, a clause end also ends the reply (with a full stop):
# a list-like sentence can run past the cap without a sentence end (seen: 120 tokens on
# "Tell me everything about the history of Rome." ending in "politics,").
CLAUSE_STOP_SHARE = 0.9

FALLBACK_REPLY = "Sorry, I don't have an answer to that. Could you say it another way?"
# Tries after the first when a reply would repeat an earlier one; then a varied fallback.
REPEAT_RETRIES = 2
RETRY_TEMPERATURE = 0.7
# Earlier replies the repeat guard compares with (a restored history can be long).
REPEAT_MEMORY_REPLIES = 200


class ChatModel(Protocol):
    def stream(self, history: Sequence[Message],
               cancel: CancelToken | None = None) -> Iterator[str]:
        """The reply to ``history`` (which ends with the user's message), piece by piece.

        Yields nothing for an empty user message. Stops soon after ``cancel`` is set.
        """
        ...


@dataclass(frozen=True)
class GenerationStats:
    backend: str
    prompt_tokens: int
    reused_tokens: int  # prompt tokens whose cache was kept from the previous turn
    dropped_messages: int
    truncated_user: bool
    new_tokens: int = 0
    first_token_s: float | None = None  # from the call to the first text piece
    total_s: float = 0.0
    stop_reason: str = ""  # "end", "length", "loop", "repeat", "cancelled", "closed", "error"
    regenerations: int = 0  # tries thrown away because they repeated an earlier reply
    # CPU time of the generating thread after the first token: with a one-thread CPU
    # backend, what the decode would take on an otherwise idle core.
    decode_cpu_s: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_s is None or self.new_tokens < 2:
            return None
        return (self.new_tokens - 1) / max(self.total_s - self.first_token_s, 1e-9)

    @property
    def tokens_per_cpu_s(self) -> float | None:
        if self.decode_cpu_s is None or self.new_tokens < 2:
            return None
        return (self.new_tokens - 1) / max(self.decode_cpu_s, 1e-9)


@dataclass(frozen=True)
class _TurnContext:
    memory: RepeatMemory
    start: str | None = None  # the reply's first sentence, from the memory
    name: str | None = None  # the bot's, from the system prompt
    user_name: str | None = None


class _Stop:
    """Either the caller's cancel token or the stream being closed early."""

    def __init__(self, cancel: CancelToken | None):
        self.cancel = cancel
        self.closed = threading.Event()

    def is_set(self) -> bool:
        return self.closed.is_set() or (self.cancel is not None and self.cancel.is_set())


_DONE = object()


class LocalChatModel:
    """A ChatModel running a local causal LM through a backend."""

    def __init__(self, backend: Backend, tokenizer: Any, *, system_prompt: str,
                 max_reply_tokens: int = 120, context_tokens: int = 2048,
                 options: GenerationOptions | None = None,
                 stop_token_ids: Sequence[int] = (),
                 policy: ContextPolicy | None = DEFAULT_POLICY):
        if max_reply_tokens < 1:
            raise ValueError("max_reply_tokens must be at least 1")
        if context_tokens <= max_reply_tokens:
            raise ValueError(f"context_tokens ({context_tokens}) must be larger than "
                             f"max_reply_tokens ({max_reply_tokens})")
        self.backend = backend
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.max_reply_tokens = max_reply_tokens
        self.context_tokens = context_tokens
        self.options = replace(options or GenerationOptions(), max_new_tokens=max_reply_tokens)
        self.stop_token_ids = frozenset(stop_token_ids) | _stop_ids(tokenizer)
        self.policy = policy  # None: the whole history within the token budget, as it is
        self.last_prompt: Prompt | None = None
        self.last_stats: GenerationStats | None = None
        self.generations = 0  # how many times the model actually ran
        self._lock = threading.Lock()  # one generation at a time: the cache is shared

    @property
    def prompt_budget(self) -> int:
        return self.context_tokens - self.max_reply_tokens

    def prompt_for(self, history: Sequence[Message]) -> Prompt:
        system, messages = self.system_prompt, list(history)
        if self.policy is None:
            return build_prompt(self.tokenizer, system, messages, self.prompt_budget)
        system, messages = self.policy.apply(
            system, history, own_name=assistant_name(system), tokenizer=self.tokenizer)
        prompt = build_prompt(self.tokenizer, system, messages, self.prompt_budget)
        if messages and messages[-1]["content"] != str(history[-1].get("content", "")).strip():
            prompt = replace(prompt, truncated_user=True)  # shortened or replaced by a note
        return prompt

    def turn_context(self, history: Sequence[Message]) -> _TurnContext:
        """What the reply to ``history`` must keep to besides the prompt: the replies it
        must not repeat, its first sentence when the user asks what the memory knows
        (their own name, city, job or likes, or the bot's name: ``user_facts``), the
        names of the bot and of the user."""
        if self.policy is None or not history or history[-1].get("role") != "user":
            return _TurnContext(RepeatMemory())
        question = str(history[-1].get("content", ""))
        facts = self.policy.facts(normalize_history(history))
        name = assistant_name(self.system_prompt)
        start = identity_answer(question, name) or answer_start(question, facts)
        replies = [str(m.get("content", "")) for m in history if m.get("role") == "assistant"]
        # A fact said again is right, not a stock sentence: no repeat memory then.
        memory = RepeatMemory() if start else RepeatMemory(replies[-REPEAT_MEMORY_REPLIES:])
        return _TurnContext(memory, start, name, facts.name)

    def warm_up(self) -> None:
        """Compute the system prompt once, so the first turn only computes the question."""
        with self._lock:
            prompt = build_prompt(self.tokenizer, self.system_prompt,
                                  [{"role": "user", "content": "Hello."}], self.prompt_budget)
            self.backend.start(prompt.ids)

    def stream(self, history: Sequence[Message],
               cancel: CancelToken | None = None) -> Iterator[str]:
        if not history or not str(history[-1].get("content", "")).strip():
            return  # nothing was said: no reply, and no time spent on the model
        started = time.perf_counter()
        prompt = self.prompt_for(history)
        turn = self.turn_context(history)
        stop = _Stop(cancel)
        pieces: queue.SimpleQueue[Any] = queue.SimpleQueue()
        worker = threading.Thread(target=self._generate,
                                  args=(prompt, stop, pieces, started, turn),
                                  name="chat-lm", daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if stop.is_set():
                    break  # cancelled: do not hand out what was already queued
                yield item
        finally:
            stop.closed.set()
            worker.join()

    def reply(self, history: Sequence[Message], cancel: CancelToken | None = None) -> str:
        return "".join(self.stream(history, cancel)).strip()

    def _generate(self, prompt: Prompt, stop: _Stop, pieces: queue.SimpleQueue,
                  started: float, turn: _TurnContext | None = None) -> None:
        with self._lock:
            self.last_prompt = prompt
            self.generations += 1
            stats = GenerationStats(backend=self.backend.name, prompt_tokens=len(prompt.ids),
                                    reused_tokens=0, dropped_messages=prompt.dropped_messages,
                                    truncated_user=prompt.truncated_user)
            try:
                stats = self._decode_without_repeats(prompt, stop, pieces, started, stats,
                                                     turn or _TurnContext(RepeatMemory()))
            except BaseException as exc:
                stats = replace(stats, stop_reason="error")
                log.exception("chat model failed")
                pieces.put(exc)
            finally:
                self.last_stats = replace(stats, total_s=time.perf_counter() - started)
                pieces.put(_DONE)

    def _decode_without_repeats(self, prompt: Prompt, stop: _Stop, pieces: queue.SimpleQueue,
                                started: float, stats: GenerationStats,
                                turn: _TurnContext) -> GenerationStats:
        """``_decode``, again while the reply would repeat an earlier one (see the module
        docstring); nothing of a thrown-away try reaches the listener."""
        memory, start = turn.memory, turn.start
        banned: set[int] = set()
        for attempt in range(REPEAT_RETRIES + 1):
            options = self.options
            if attempt:
                options = replace(options, temperature=max(options.temperature,
                                                           RETRY_TEMPERATURE),
                                  seed=(options.seed or 0) + attempt,
                                  logits_processors=(*options.logits_processors,
                                                     _ban_first(frozenset(banned))))
            if turn.name:
                options = replace(options, logits_processors=(
                    *options.logits_processors,
                    IdentityKeeper(self.tokenizer, turn.name, turn.user_name)))
            if start:  # last, so it overrides the others while the answer is written
                options = replace(options, logits_processors=(
                    *options.logits_processors,
                    _force_start(self.tokenizer.encode(start, add_special_tokens=False))))
            stats, verdict, first = self._decode(prompt, stop, pieces, started, stats,
                                                 options, RepeatFilter(memory))
            if verdict != REGENERATE:
                return replace(stats, regenerations=attempt)
            if first is not None:
                banned.add(first)
        log.info("chat model: %d tries all repeated an earlier reply", REPEAT_RETRIES + 1)
        pieces.put(memory.fallback())
        return replace(stats, regenerations=REPEAT_RETRIES + 1, stop_reason="repeat",
                       first_token_s=stats.first_token_s or time.perf_counter() - started)

    def _decode(self, prompt: Prompt, stop: _Stop, pieces: queue.SimpleQueue,
                started: float, stats: GenerationStats, options: GenerationOptions | None = None,
                repeat: RepeatFilter | None = None
                ) -> tuple[GenerationStats, str, int | None]:
        """One try: (stats, the repeat filter's verdict, the first token chosen)."""
        options = options or self.options
        rng = np.random.default_rng(options.seed)
        text = TextStream(self.tokenizer)
        guard = LoopGuard()
        repeat = repeat or RepeatFilter(RepeatMemory())
        verdict = KEEP
        generated: list[int] = []
        wrap_up_at = (None if options.wrap_up_after is None
                      else int(options.wrap_up_after * options.max_new_tokens))
        first_token_s = None
        first_token_cpu = None
        said_something = False
        logits = self.backend.start(prompt.ids, stop)
        stats = replace(stats, reused_tokens=self.backend.reused_tokens)
        reason = "length"
        held = ""  # a clause mark not yet handed out (see below)
        while True:
            if logits is None or stop.is_set():
                # The caller's cancel wins: closing the stream follows a cancel at once.
                cancelled = stop.cancel is not None and stop.cancel.is_set()
                reason = "cancelled" if cancelled else "closed"
                break
            if len(generated) >= options.max_new_tokens:
                reason = "length"
                break
            token = choose_token(logits, generated, options, rng)
            if token in self.stop_token_ids:
                reason = "end"
                break
            generated.append(token)
            piece = held + text.push(token)
            held = ""
            if not said_something:
                piece = piece.lstrip()
            # A clause mark (",", ";", ":") at the end of a piece is held back until the
            # next piece: if the cap ends the reply there, it becomes a full stop instead.
            clause = _CLAUSE_END.search(piece)
            if clause:
                piece, held = piece[:clause.start()], piece[clause.start():]
            if piece:
                said_something = True
                released, verdict = repeat.push(piece)
                if released:
                    if first_token_s is None:
                        first_token_s = time.perf_counter() - started
                        first_token_cpu = time.thread_time()
                    pieces.put(released)
                if verdict != KEEP:
                    reason = "repeat"
                    break
            if guard.push(token):
                reason = "loop"
                break
            if wrap_up_at is not None and len(generated) >= wrap_up_at \
                    and _SENTENCE_END.search(text.text):
                reason = "length"
                break
            if held and len(generated) >= CLAUSE_STOP_SHARE * options.max_new_tokens:
                # No sentence end came in time: end at this clause, not mid-phrase.
                reason = "length"
                break
            logits = self.backend.step(token)
        if verdict == REGENERATE:
            return stats, verdict, generated[0] if generated else None
        ending = ""
        if held and reason != "repeat":
            ending = "." if reason == "length" else held
        elif reason == "length" and said_something and text.text.rstrip()[-1:].isalnum():
            # The hard cap fell mid-clause: a full stop makes the voice fall, as at an end.
            ending = "."
        if reason in ("end", "length", "loop", "closed", "cancelled"):
            released, verdict = repeat.push(ending) if ending else ("", KEEP)
            if verdict == KEEP and reason in ("end", "length", "loop"):
                rest, verdict = repeat.finish()
                released += rest
            elif verdict == KEEP:  # stopped by the listener: what is held is not said
                released = ""
            if verdict == REGENERATE:
                return stats, verdict, generated[0] if generated else None
            if released:
                if first_token_s is None:
                    first_token_s = time.perf_counter() - started
                pieces.put(released)
        if reason in ("end", "length", "loop") and not text.text.strip():
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
            pieces.put(FALLBACK_REPLY if normalized(FALLBACK_REPLY) not in repeat.memory.replies
                       else repeat.memory.fallback())
        decode_cpu_s = None if first_token_cpu is None else time.thread_time() - first_token_cpu
        stats = replace(stats, new_tokens=len(generated), first_token_s=first_token_s,
                        stop_reason=reason, decode_cpu_s=decode_cpu_s)
        return stats, verdict, generated[0] if generated else None


def _ban_first(tokens: frozenset[int]):
    """A logits processor: none of ``tokens`` as the reply's first token."""
    def processor(generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        if not generated and tokens:
            logits[list(tokens)] = -np.inf
        return logits
    return processor


def _force_start(ids: Sequence[int]):
    """A logits processor: the reply starts with ``ids``."""
    def processor(generated: Sequence[int], logits: np.ndarray) -> np.ndarray:
        if len(generated) < len(ids):
            out = np.full_like(logits, -np.inf)
            out[ids[len(generated)]] = 0.0
            return out
        return logits
    return processor


def _stop_ids(tokenizer: Any) -> frozenset[int]:
    """The ids that end a reply: end-of-sequence and the chat template's special tokens
    (a model that starts a new turn, "<|im_start|>user", has finished its own)."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    return frozenset(ids)
