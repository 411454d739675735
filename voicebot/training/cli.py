"""``voicebot train``: fine-tune a voice on recordings (the process the Training tab runs).

    voicebot train tts --data DIR --out DIR [--resume] [--base CHECKPOINT] [--max-steps N]
                       [--base-minutes M] [--base-steps N]
    voicebot train base [--minutes M] [--max-steps N] [--out DIR] [--device ...]
    voicebot train asr|asr-vocab --data DIR --out DIR ...   (voicebot.training.asr_cli)

Each target is a subcommand with its own options: ``voicebot train asr --help`` lists
the recognition options, not the voice ones.

``train base`` builds (or continues) the base voice taught by the built-in Piper voice,
cached in the user data folder (``voicebot.training.base_voice``); ``train tts`` builds it
first by itself when no base exists, with ``--base-minutes`` / ``--base-steps`` for a
smaller one (what a CPU-only user or a benchmark runs).

Progress is printed as JSON lines on stdout (``voicebot.training.progress``); logs go to
stderr. For several GPUs start it with torchrun::

    torchrun --nproc_per_node 4 -m voicebot train tts --data DIR --out DIR
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

BATCH_SIZE_DEFAULT = 16

# Adds the named shared options to a target's parser (passed to voicebot.training.asr_cli
# so that it declares its targets without importing this module back).
SharedOptions = Callable[..., None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One subcommand per target, each with only its own options (and its own --help)."""
    from voicebot.training import asr_cli

    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    targets = {
        "tts": ("fine-tune a Tacotron2 voice on recordings", _add_tts_arguments),
        "base": ("build or continue the base voice taught by the built-in Piper voice",
                 _add_base_arguments),
        "asr": ("adapt recognition: a LoRA adapter of the Whisper model",
                asr_cli.add_asr_arguments),
        "asr-vocab": ("adapt recognition: an n-gram LM of your own text",
                      asr_cli.add_vocab_arguments),
    }
    for name, (help_text, add) in targets.items():
        target = sub.add_parser(name, help=help_text, description=help_text)
        add(target, _shared_options)


def option_strings(target: str) -> set[str]:
    """The option strings ``voicebot train TARGET`` accepts (read from its parser)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for action in subparsers.choices[target]._actions
            for s in action.option_strings}


def _shared_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """The options several targets share, declared once: only ``names`` are added."""
    declared = {
        "data": (("--data",), {"type": Path, "help": "dataset folder in the LJSpeech layout "
                                                   "(metadata.csv + wavs/)"}),
        "out": (("--out",), {"type": Path, "help": "run folder: checkpoints, progress.jsonl"}),
        "resume": (("--resume",), {"action": "store_true",
                                   "help": "continue from the newest checkpoint in --out"}),
        "max-steps": (("--max-steps",), {"type": int,
                                         "help": "stop after this many steps in total"}),
        "batch-size": (("--batch-size",), {"type": int, "default": BATCH_SIZE_DEFAULT,
                                           "help": "takes per step (per GPU)"}),
        "lr": (("--lr",), {"type": float, "help": "learning rate"}),
        "checkpoint-every": (("--checkpoint-every",), {"type": int, "default": 200,
                                                       "metavar": "STEPS"}),
        "no-preview": (("--no-preview",), {"action": "store_true", "help": (
            "do not synthesise a preview at each checkpoint")}),
        "device": (("--device",), {"choices": ["auto", "cpu", "cuda"], "default": "auto"}),
        "threads": (("--threads",), {"type": int, "help": "torch CPU threads"}),
        "seed": (("--seed",), {"type": int, "default": 0}),
    }
    for name in names:
        flags, options = declared[name]
        parser.add_argument(*flags, **options)


def _add_tts_arguments(parser: argparse.ArgumentParser, shared: SharedOptions) -> None:
    shared(parser, "data", "out", "resume")
    parser.add_argument("--base", type=Path,
                        help="Tacotron2 checkpoint to fine-tune from (default: the installed "
                             "Coqui base, else the cached Piper-taught base, else one "
                             "built first)")
    parser.add_argument("--scratch", action="store_true",
                        help="train from scratch even if a base model is installed")
    shared(parser, "max-steps", "batch-size", "lr", "checkpoint-every", "no-preview")
    parser.add_argument("--preview-text", help="sentence spoken by each preview")
    parser.add_argument("--vocoder", type=Path,
                        help="HiFi-GAN checkpoint for previews (default: the installed "
                             "coqui-hifigan-v2-ljspeech, else Griffin-Lim)")
    shared(parser, "device")
    parser.add_argument("--frames-per-step", dest="r", type=int,
                        help="decoder frames per step, Tacotron2's r (scratch only)")
    shared(parser, "threads", "seed")
    group = parser.add_argument_group("base voice (built first when none exists)")
    group.add_argument("--base-minutes", type=float,
                       help="minutes of Piper speech the base learns from")
    group.add_argument("--base-steps", type=int, help="training steps of the base")
    scoring = parser.add_argument_group("self-scoring (on the held-out takes)")
    scoring.add_argument("--no-score", action="store_true",
                         help="do not score the voice (Whisper round trip, resemblance "
                              "to your held-out takes) nor pick the best checkpoint")
    scoring.add_argument("--score-every", type=int, default=0, metavar="STEPS",
                         help="also score at checkpoints every STEPS steps and keep the "
                              "best (default 0: only the final voice)")


def _add_base_arguments(parser: argparse.ArgumentParser, shared: SharedOptions) -> None:
    parser.add_argument("--minutes", type=float,
                        help="minutes of Piper speech to learn from (default 60 on CPU, "
                             "180 on CUDA)")
    parser.add_argument("--out", type=Path,
                        help="run folder (default: the cache folder in the user data "
                             "folder)")
    shared(parser, "max-steps")
    parser.add_argument("--batch-size", type=int,
                        help="takes per step (default 24 on CPU, 64 on CUDA)")
    shared(parser, "checkpoint-every", "no-preview", "device", "threads", "seed")


def arguments_ok(args: argparse.Namespace, at_least_one: tuple[str, ...],
                 needs_data: bool = True) -> bool:
    """Checks shared by every training target; logs what is wrong."""
    for name in at_least_one:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            log.error("--%s must be at least 1", name.replace("_", "-"))
            return False
    for name in ("minutes", "base_minutes"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            log.error("--%s must be positive", name.replace("_", "-"))
            return False
    if not needs_data:
        return True
    if args.data is None or args.out is None:
        log.error("--data and --out are required for %s", args.target)
        return False
    if not args.data.is_dir():
        log.error("--data %s is not a folder", args.data)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if args.target in ("asr", "asr-vocab"):
        from voicebot.training.asr_cli import run_asr

        if not arguments_ok(args, ("batch_size", "checkpoint_every", "threads", "rank")):
            return 2
        return run_asr(args)
    if args.target == "base":
        return run_base(args)
    from voicebot.training.tts_train import (
        PREVIEW_TEXT,
        StopFlag,
        TrainingError,
        TrainOptions,
        train,
    )

    if not arguments_ok(args, ("max_steps", "batch_size", "checkpoint_every", "r", "threads",
                               "base_steps")):
        return 2
    # Signals first: a cancel that arrives while torch is still importing must count.
    stop = StopFlag()
    stop.install()
    options = TrainOptions(
        data=args.data, out=args.out, resume=args.resume, base=args.base,
        scratch=args.scratch, max_steps=args.max_steps, batch_size=args.batch_size,
        lr=args.lr, checkpoint_every=args.checkpoint_every, preview=not args.no_preview,
        preview_text=args.preview_text or PREVIEW_TEXT, vocoder=args.vocoder,
        device=args.device, r=args.r, seed=args.seed, threads=args.threads,
        phase=None if args.scratch else "fine-tune", base_minutes=args.base_minutes,
        base_steps=args.base_steps, score=not args.no_score,
        score_every=max(0, args.score_every))
    try:
        return train(options, stop)
    except TrainingError as exc:
        log.error("%s", exc)
        return 2


def run_base(args: argparse.Namespace) -> int:
    """``voicebot train base``: build or continue the Piper-taught base voice."""
    from dataclasses import replace

    from voicebot.training.tts_train import StopFlag, TrainingError

    if not arguments_ok(args, ("max_steps", "batch_size", "checkpoint_every", "threads"),
                        needs_data=False):
        return 2
    stop = StopFlag()
    stop.install()
    from voicebot.training import base_voice

    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    recipe = base_voice.reduced_recipe(args.minutes, args.max_steps, device)
    if args.batch_size is not None:
        recipe = replace(recipe, batch_size=args.batch_size)
    recipe = replace(recipe, seed=args.seed)
    try:
        code, _ = base_voice.build_base(base_voice.BuildOptions(
            recipe=recipe, out=args.out, device=args.device, threads=args.threads,
            checkpoint_every=args.checkpoint_every, preview=not args.no_preview), stop)
    except TrainingError as exc:
        log.error("%s", exc)
        return 2
    return code
