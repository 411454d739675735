"""`voicebot bench dialogue`: does the chat model stay good over twenty turns?

Scripted conversations of 20 turns (``CONVERSATIONS``): facts, arithmetic, follow-ups,
chit-chat, the user's name, city, job and hobby stated early and asked later, the bot's
own name asked twice, and in some conversations a poisoned turn (emoji only, a
5,000-character paste, another script). Each conversation goes through the model the way
the app does it: the whole history so far, then the reply appended to it.

Reported:

- ``accuracy_late``: share of the scored questions of turns 11-20 answered right;
  ``accuracy_fresh``: the same questions asked alone, with no history (a follow-up such
  as "And Portugal?" is asked fresh in its explicit form); ``late_minus_fresh`` in points
  (target: no worse than -10);
- ``distinct_share``: distinct replies / replies, per conversation, pooled;
  ``repeated_replies``: replies said verbatim earlier in the same conversation
  (target: 0); ``repeated_sentences``: sentences of 5+ words said in two replies;
- ``fact_recall``: share of the questions about the user's own facts answered with the
  fact (target: >= 0.8);
- ``identity_kept``: share of "What is your name?" answered with the bot's name;
  ``other_names``: replies where the bot calls itself something else;
- ``non_english_replies``: replies that look French, Spanish or another script;
- time per turn (median, p90), first text piece (median), prompt tokens (median).

Decoding is the app's (greedy unless ``--dialogue-temperature``), with a fixed seed, so
two runs on the same machine give the same replies.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.onnx_backend import default_threads
from voicebot.settings import load_settings

# 5,000 characters pasted into the chat: a run of ordinary prose.
LONG_PASTE = ("The quarterly report covers revenue, costs and the outlook for the next year. "
              * 70)[:5000]


@dataclass(frozen=True)
class Turn:
    text: str
    kind: str = "say"  # say (unscored), fact, recall (the user's own fact), identity
    expect: tuple[str, ...] = ()  # any of these words in the reply counts as right
    fresh: str | None = None  # the question asked alone, when it differs from ``text``


def _fact(text: str, *expect: str, fresh: str | None = None) -> Turn:
    return Turn(text, "fact", expect, fresh)


def _recall(text: str, *expect: str) -> Turn:
    return Turn(text, "recall", expect)


IDENTITY = Turn("What is your name?", "identity", ("voicebot",))

CONVERSATIONS: dict[str, list[Turn]] = {
    "tom-paris": [
        Turn("Hi! My name is Tom."),
        Turn("I live in Paris."),
        _fact("What is the capital of Italy?", "rome"),
        Turn("I'm a teacher."),
        _fact("What is two plus two?", "4", "four"),
        Turn("Tell me something interesting about the ocean."),
        _fact("What is the capital of Spain?", "madrid"),
        _fact("And what about Portugal?", "lisbon",
              fresh="What is the capital of Portugal?"),
        Turn("I like playing chess."),
        IDENTITY,
        _fact("What color is the sky on a clear day?", "blue"),
        _recall("What is my name?", "tom"),
        _fact("How many days are in a week?", "7", "seven"),
        _recall("Where do I live?", "paris"),
        _fact("What do bees make?", "honey"),
        Turn("Tell me more about that."),
        _fact("What is ten minus three?", "7", "seven"),
        _recall("What do I do for a living?", "teacher", "teach", "teaching"),
        _fact("What is the capital of Japan?", "tokyo"),
        IDENTITY,
    ],
    "maria-madrid": [
        Turn("Hello there."),
        Turn("I'm Maria, by the way."),
        Turn("I live in Madrid, Spain."),
        _fact("What is the largest planet in our solar system?", "jupiter"),
        Turn("I work as a nurse."),
        _fact("What is three times three?", "9", "nine"),
        Turn("What's a good way to relax after work?"),
        Turn("Why is that?"),
        Turn("I love gardening."),
        _fact("What is the capital of Germany?", "berlin"),
        _recall("Do you remember my name?", "maria"),
        _fact("What is frozen water called?", "ice"),
        IDENTITY,
        _fact("What animal says moo?", "cow", "cows"),
        _recall("Which city do I live in?", "madrid"),
        _fact("How many legs does a spider have?", "8", "eight"),
        Turn("Can you tell me a fun fact?"),
        _fact("What is the opposite of hot?", "cold"),
        _recall("What is my job?", "nurse", "nursing"),
        _fact("What planet do we live on?", "earth"),
    ],
    "poisoned": [
        Turn("Good morning!"),
        Turn("My name is Ken and I live in Tokyo."),
        _fact("What is the capital of France?", "paris"),
        Turn("\U0001F600\U0001F389\U0001F44D\U0001F525\U0001F600"),
        _fact("What color is grass?", "green"),
        Turn(LONG_PASTE),
        _fact("What is the capital of France?", "paris"),
        Turn("\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?"),
        _fact("What do cows drink?", "water"),
        Turn("\U0001F602\U0001F602\U0001F602"),
        _fact("What color is the sky on a clear day?", "blue"),
        _recall("What's my name?", "ken"),
        _fact("What is the capital of England?", "london"),
        Turn("Tell me about the moon."),
        _fact("How many hours are in a day?", "24", "twenty-four", "twenty"),
        _recall("Where do I live?", "tokyo"),
        _fact("What do bees make?", "honey"),
        IDENTITY,
        _fact("What is the capital of Italy?", "rome"),
        _fact("What is one plus one?", "2", "two"),
    ],
    "sam-london": [
        Turn("Hey, call me Sam."),
        Turn("I'm from London."),
        Turn("I'm a software engineer."),
        Turn("Tell me a joke."),
        Turn("Another one, please."),
        _fact("What is the capital of Canada?", "ottawa"),
        Turn("I enjoy cooking Italian food."),
        _fact("What is five plus five?", "10", "ten"),
        Turn("What should I cook tonight?"),
        Turn("Sounds good, thanks."),
        _fact("What is the boiling point of water in Celsius?", "100", "hundred"),
        _recall("What's my name again?", "sam"),
        _fact("What is the capital of France?", "paris"),
        _recall("Where am I from?", "london"),
        _fact("What is the largest ocean on Earth?", "pacific"),
        IDENTITY,
        _recall("What do I enjoy doing?", "cook", "cooking", "italian"),
        _fact("Who wrote Romeo and Juliet?", "shakespeare"),
        Turn("Thanks for the chat."),
        _fact("What is the capital of Spain?", "madrid"),
    ],
}

LATE_FROM = 10  # turns 11-20 (0-based index 10 on)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)?")
_SENTENCE = re.compile(r"[^.!?…]+[.!?…]?")
_OTHER_NAME = re.compile(r"(?i:\b(?:my name is|i'm called|i am called))\s+([A-Z][a-z]+)")
_ROMANCE = {"je", "suis", "vous", "est", "les", "des", "une", "merci", "bonjour", "oui",
            "estoy", "usted", "gracias", "hola", "muy", "avec", "pour", "c'est"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dialogue benchmark")
    group.add_argument("--dialogue-model", help="catalog id or folder (default: from settings)")
    group.add_argument("--dialogue-backend", default="auto", choices=("auto", "onnx", "torch"))
    group.add_argument("--dialogue-threads", type=int, help="CPU threads for the model")
    group.add_argument("--dialogue-seed", type=int, default=0, help="sampling seed")
    group.add_argument("--dialogue-temperature", type=float, default=0.0,
                       help="0: greedy, as the app")
    group.add_argument("--dialogue-only", action="append",
                       help="run only this conversation (repeatable)")
    group.add_argument("--dialogue-transcript", action="store_true",
                       help="include every turn's message and reply in the JSON")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def is_right(reply: str, expect: Sequence[str]) -> bool:
    found = set(words(reply))
    return any(word in found for word in expect)


def normalized(text: str) -> str:
    return " ".join(words(text))


def long_sentences(reply: str, min_words: int = 5) -> set[str]:
    out = set()
    for sentence in _SENTENCE.findall(reply):
        key = normalized(sentence)
        if len(key.split()) >= min_words:
            out.add(key)
    return out


def looks_non_english(reply: str) -> bool:
    letters = [ch for ch in reply if ch.isalpha()]
    if letters and sum(ord(ch) > 0x24F for ch in letters) > 0.3 * len(letters):
        return True  # another script
    tokens = set(re.findall(r"[a-z']+", reply.lower()))
    return len(tokens & _ROMANCE) >= 2


def other_name(reply: str, own: str = "Voicebot") -> str | None:
    for match in _OTHER_NAME.finditer(reply):
        if match.group(1).lower() != own.lower():
            return match.group(1)
    return None


def _answer(model: Any, history: list[dict[str, str]]) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    reply = model.reply(history)
    elapsed = time.perf_counter() - started
    stats = model.last_stats
    return reply, {"turn_s": elapsed,
                   "first_token_s": None if stats is None else stats.first_token_s,
                   "prompt_tokens": None if stats is None else stats.prompt_tokens}


def run_conversation(model: Any, turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Each turn's record: message, reply, kind, right (None when unscored), timings."""
    history: list[dict[str, str]] = []
    records = []
    for index, turn in enumerate(turns):
        history.append({"role": "user", "content": turn.text})
        reply, timing = _answer(model, history)
        if reply:
            history.append({"role": "assistant", "content": reply})
        else:
            history.pop()
        records.append({"turn": index + 1, "kind": turn.kind, "user": turn.text,
                        "reply": reply,
                        "right": is_right(reply, turn.expect) if turn.expect else None,
                        **timing})
    return records


def score(conversations: dict[str, list[Turn]],
          transcripts: dict[str, list[dict[str, Any]]],
          fresh: dict[str, str]) -> dict[str, Any]:
    """The numbers of the module docstring, from the transcripts and the fresh replies."""
    late_right, fresh_right, recall, identity = [], [], [], []
    replies = distinct = repeated = repeated_sentences = others = non_english = 0
    for name, turns in conversations.items():
        records = transcripts[name]
        seen: set[str] = set()
        sentences_seen: set[str] = set()
        for turn, record in zip(turns, records, strict=True):
            reply = record["reply"]
            key = normalized(reply)
            replies += 1
            if key in seen:
                repeated += 1
            else:
                distinct += 1
            seen.add(key)
            sentences = long_sentences(reply)
            repeated_sentences += len(sentences & sentences_seen)
            sentences_seen |= sentences
            others += other_name(reply) is not None
            non_english += looks_non_english(reply)
            if turn.kind == "fact" and record["turn"] > LATE_FROM:
                late_right.append(record["right"])
                fresh_right.append(is_right(fresh[turn.fresh or turn.text], turn.expect))
            elif turn.kind == "recall":
                recall.append(record["right"])
            elif turn.kind == "identity":
                identity.append(record["right"])

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    accuracy_late, accuracy_fresh = share(late_right), share(fresh_right)
    return {
        "accuracy_late": accuracy_late, "accuracy_fresh": accuracy_fresh,
        "late_minus_fresh": None if accuracy_late is None or accuracy_fresh is None
        else round(100 * (accuracy_late - accuracy_fresh), 1),
        "late_questions": len(late_right),
        "distinct_share": round(distinct / max(replies, 1), 3),
        "repeated_replies": repeated, "repeated_sentences": repeated_sentences,
        "fact_recall": share(recall), "recall_questions": len(recall),
        "identity_kept": share(identity), "other_names": others,
        "non_english_replies": non_english, "replies": replies,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from transformers.utils import logging as hf_logging

    from voicebot.lm.loading import load_chat_model

    hf_logging.disable_progress_bar()
    conversations = {name: turns for name, turns in CONVERSATIONS.items()
                     if not args.dialogue_only or name in args.dialogue_only}
    threads = args.dialogue_threads or default_threads()
    started = time.perf_counter()
    model = load_chat_model(args.dialogue_model or _default_model(),
                            backend=args.dialogue_backend, threads=threads,
                            options=GenerationOptions(temperature=args.dialogue_temperature,
                                                      seed=args.dialogue_seed))
    load_s = time.perf_counter() - started
    result = run_on(model, conversations, transcript=args.dialogue_transcript)
    return {"model": args.dialogue_model or "default", "backend": model.backend.name,
            "threads": threads, "cpu_count": os.cpu_count(), "seed": args.dialogue_seed,
            "temperature": args.dialogue_temperature, "load_s": round(load_s, 2), **result,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run_on(model: Any, conversations: dict[str, list[Turn]],
           transcript: bool = False) -> dict[str, Any]:
    """Run ``conversations`` and the fresh questions on a loaded model; the scores."""
    transcripts = {name: run_conversation(model, turns)
                   for name, turns in conversations.items()}
    fresh: dict[str, str] = {}
    for turns in conversations.values():
        for turn in turns[LATE_FROM:]:
            question = turn.fresh or turn.text
            if turn.kind == "fact" and question not in fresh:
                fresh[question] = model.reply([{"role": "user", "content": question}])
    records = [record for rows in transcripts.values() for record in rows]
    turn_s = sorted(record["turn_s"] for record in records)
    firsts = [record["first_token_s"] for record in records
              if record["first_token_s"] is not None]
    prompts = [record["prompt_tokens"] for record in records
               if record["prompt_tokens"] is not None]
    result: dict[str, Any] = {
        "conversations": len(conversations), **score(conversations, transcripts, fresh),
        "turn_ms_median": round(1000 * statistics.median(turn_s), 1),
        "turn_ms_p90": round(1000 * turn_s[int(0.9 * (len(turn_s) - 1))], 1),
        "first_token_ms_median": round(1000 * statistics.median(firsts), 1) if firsts
        else None,
        "prompt_tokens_median": statistics.median(prompts) if prompts else None,
        "prompt_tokens_max": max(prompts) if prompts else None,
    }
    if transcript:
        result["transcripts"] = {
            name: [{key: record[key] for key in ("turn", "kind", "user", "reply", "right")}
                   | {"user": record["user"][:200]} for record in rows]
            for name, rows in transcripts.items()}
        result["fresh"] = fresh
    return result


def _default_model() -> str:

    return load_settings().chat.model
