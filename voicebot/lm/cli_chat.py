"""`voicebot chat`: a reply from the chat model, in a terminal or a script.

    voicebot chat "What is the capital of France?"          # one reply, streamed
    voicebot chat "What is the capital of France?" --json   # one JSON object
    voicebot chat                                           # talk until end of input
    voicebot chat --json < messages.txt                     # one JSON line per reply

Interactive mode reads one message per line until end of input (Ctrl+D) and remembers
the conversation like the app does; "/reset" forgets it. Ctrl+C stops the reply being
written (like barge-in), a second Ctrl+C at the prompt quits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

from voicebot.lm.decoding import GenerationOptions
from voicebot.lm.loading import BACKENDS
from voicebot.lm.speech_shaping import ClauseSplitter
from voicebot.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="the message; without it, chat interactively "
                                                "(one message per line until end of input)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: reply, speakable pieces, timings "
                             "(interactive: one object per reply, on one line)")
    parser.add_argument("--model", help="catalog id or model folder (default: from settings)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="onnx: fast CPU path; torch: any model, CUDA when present")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads for the model")
    parser.add_argument("--max-tokens", type=int, help="longest reply, in tokens")
    parser.add_argument("--system", help="system prompt (default: from settings)")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 for the most likely reply (default), e.g. 0.7 for variety")
    parser.add_argument("--seed", type=int, help="random seed when sampling")


def _load(args: argparse.Namespace) -> Any:
    from transformers.utils import logging as hf_logging

    from voicebot.lm.loading import load_chat_model

    hf_logging.disable_progress_bar()  # weight-loading bars would mix with the reply
    chat = load_settings().chat  # this entry point hands the user's choices down
    return load_chat_model(args.model or chat.model,
                           system_prompt=chat.system_prompt if args.system is None
                           else args.system,
                           max_reply_tokens=args.max_tokens or chat.max_reply_tokens,
                           context_tokens=chat.context_tokens, backend=args.backend,
                           device=args.device, threads=args.threads,
                           options=GenerationOptions(temperature=args.temperature,
                                                     seed=args.seed))


def run(args: argparse.Namespace) -> int:
    if args.text is not None:
        return _one_shot(args)
    return _interactive(args)


def _one_shot(args: argparse.Namespace) -> int:

    if not args.text.strip():
        # Nothing was said: like the app, do not even load the model.
        if args.json:
            print(json.dumps({"reply": "", "speakable": [], "stats": None}))
        else:
            print("voicebot chat: empty message, nothing to answer", file=sys.stderr)
        return 0
    started = time.perf_counter()
    model = _load(args)
    load_s = time.perf_counter() - started
    history = [{"role": "user", "content": args.text}]
    splitter = ClauseSplitter()
    speakable: list[str] = []
    reply = ""
    first_clause_s = None
    call = time.perf_counter()
    for piece in model.stream(history):
        reply += piece
        clauses = splitter.push(piece)
        if clauses and first_clause_s is None:
            first_clause_s = time.perf_counter() - call
        speakable += clauses
        if not args.json:
            print(piece, end="", flush=True)
    rest = splitter.flush()
    if rest and first_clause_s is None:
        first_clause_s = time.perf_counter() - call  # the reply was a single clause
    speakable += rest
    if args.json:
        stats = model.last_stats
        print(json.dumps({
            "reply": reply.strip(), "speakable": speakable, "backend": model.backend.name,
            "load_s": round(load_s, 3),
            "first_clause_s": None if first_clause_s is None else round(first_clause_s, 4),
            "stats": None if stats is None else {**asdict(stats),
                                                 "tokens_per_s": stats.tokens_per_s},
        }))
    else:
        print()
    return 0


def _interactive(args: argparse.Namespace) -> int:
    tty = sys.stdin.isatty()
    if tty:
        print("Loading the chat model...", file=sys.stderr)
    model = _load(args)
    if tty:
        print("Type a message and press Enter; /reset forgets the conversation, "
              "Ctrl+D quits.", file=sys.stderr)
    history: list[dict[str, str]] = []
    while True:
        if tty:
            print("you> ", end="", flush=True, file=sys.stderr)
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if not line:
            return 0
        text = line.strip()
        if text == "/reset":
            history = []
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        reply = _answer_json(model, history) if args.json else _answer(model, history, tty)
        if reply:
            history.append({"role": "assistant", "content": reply})
        else:
            history.pop()


def _answer_json(model: Any, history: list[dict[str, str]]) -> str:
    """One reply as one JSON line: the text, the speakable clauses, the timings."""

    splitter = ClauseSplitter()
    reply, speakable, first_clause_s = "", [], None
    call = time.perf_counter()
    for piece in model.stream(history):
        reply += piece
        speakable += splitter.push(piece)
        if speakable and first_clause_s is None:
            first_clause_s = time.perf_counter() - call
    speakable += splitter.flush()
    if speakable and first_clause_s is None:
        first_clause_s = time.perf_counter() - call
    stats = model.last_stats
    print(json.dumps({
        "reply": reply.strip(), "speakable": speakable, "backend": model.backend.name,
        "turn_s": round(time.perf_counter() - call, 4),
        "first_clause_s": None if first_clause_s is None else round(first_clause_s, 4),
        "stats": None if stats is None else {**asdict(stats), "tokens_per_s": stats.tokens_per_s},
    }), flush=True)
    return reply.strip()


def _answer(model: Any, history: list[dict[str, str]], tty: bool) -> str:
    cancel = threading.Event()
    reply = ""
    if tty:
        print("bot> ", end="", flush=True)
    pieces = model.stream(history, cancel)
    try:
        for piece in pieces:
            reply += piece
            print(piece, end="", flush=True)
    except KeyboardInterrupt:
        cancel.set()  # the model stops within a token; keep what was said
        pieces.close()
    print(flush=True)
    return reply.strip()
