"""``voicebot train asr`` / ``voicebot train asr-vocab``: adapt recognition to the user.

    voicebot train asr --data DIR --out DIR [--resume] [--max-steps N] [--rank R]
    voicebot train asr-vocab --data DIR --out DIR [--words FILE] [--no-history]

``asr`` fine-tunes a LoRA adapter of the Whisper model (``voicebot.training.asr_train``;
JSON progress lines on stdout). ``asr-vocab`` trains nothing: it builds an n-gram LM of
the user's own text (the prompts in DIR's metadata.csv, the chat history, a word list)
at OUT/user.arpa for interpolation with the base LM (``voicebot.asr.adapt_vocab``).
The shared options (--data, --out, --resume, --max-steps, --batch-size, --lr, --device,
--threads, --seed, --checkpoint-every) are declared once by ``voicebot.training.cli``,
which builds the ``voicebot train`` subcommands and passes its declaring function in:
this module never imports it back (no import circle), and the shared argument checks
(``cli.arguments_ok``) run there before :func:`run_asr`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from voicebot.asr.adapt_vocab import build_user_lm, gather_user_text
from voicebot.pipeline.history import load_history
from voicebot.settings import load_settings
from voicebot.training.run_folder import StopFlag

log = logging.getLogger(__name__)

TARGETS = ("asr", "asr-vocab")


def add_asr_arguments(parser: argparse.ArgumentParser, shared) -> None:
    """``voicebot train asr``; ``shared(parser, *names)`` adds the shared options."""
    shared(parser, "data", "out", "resume", "max-steps", "batch-size", "lr",
           "checkpoint-every", "device", "threads", "seed")
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8)")
    parser.add_argument("--model", help="Whisper model id (default: the one in settings)")


def add_vocab_arguments(parser: argparse.ArgumentParser, shared) -> None:
    """``voicebot train asr-vocab``: builds an LM, trains nothing."""
    shared(parser, "data")
    parser.add_argument("--out", type=Path, help="folder for the LM (OUT/user.arpa)")
    parser.add_argument("--words", type=Path,
                        help="a word or phrase list file, one per line")
    parser.add_argument("--no-history", action="store_true",
                        help="leave the chat history out")


def run_asr(args: argparse.Namespace) -> int:
    if args.target == "asr-vocab":
        return _run_vocab(args)
    from voicebot.training.asr_train import AsrTrainingError, AsrTrainOptions, train_asr

    if args.max_steps is not None and args.max_steps < 0:
        log.error("--max-steps must not be negative")
        return 2
    stop = StopFlag()
    stop.install()  # before torch loads: a cancel during the import must count
    options = AsrTrainOptions(
        data=args.data, out=args.out, resume=args.resume,
        model=args.model or load_settings().asr.model,  # the entry point hands it down
        max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr, rank=args.rank,
        checkpoint_every=args.checkpoint_every, device=args.device, threads=args.threads,
        seed=args.seed)
    try:
        return train_asr(options, stop)
    except AsrTrainingError as exc:
        log.error("%s", exc)
        return 2


def _run_vocab(args: argparse.Namespace) -> int:
    from voicebot.training.dataset import prompt_texts

    try:
        texts = gather_user_text(prompt_texts(args.data), word_list=args.words,
                                 history=[] if args.no_history else load_history())
        path = build_user_lm(texts, Path(args.out) / "user.arpa")
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    print(json.dumps({"event": "done", "user_lm": str(path), "texts": len(texts)}))
    return 0
