"""``voicebot train``: fine-tune a voice on recordings (the process the Training tab runs).

    voicebot train tts --data DIR --out DIR [--resume] [--base CHECKPOINT] [--max-steps N]
                       [--base-minutes M] [--base-steps N]
    voicebot train base [--minutes M] [--max-steps N] [--out DIR] [--device ...]

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
from pathlib import Path

log = logging.getLogger(__name__)

BATCH_SIZE_DEFAULT = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["tts", "base", "asr", "asr-vocab"],
                        help="what to train: tts (a Tacotron2 voice); base (the base voice "
                             "taught by the built-in Piper voice); asr, asr-vocab: "
                             "adapt recognition (voicebot.training.asr_cli)")
    parser.add_argument("--data", type=Path,
                        help="dataset folder in the LJSpeech layout (metadata.csv + wavs/); "
                             "required except for base")
    parser.add_argument("--out", type=Path,
                        help="run folder: checkpoints, previews, progress.jsonl (base: "
                             "default the cache folder in the user data folder)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out")
    parser.add_argument("--base", type=Path,
                        help="Tacotron2 checkpoint to fine-tune from (default: the installed "
                             "coqui-tacotron2-ddc-ljspeech, else from scratch)")
    parser.add_argument("--scratch", action="store_true",
                        help="train from scratch even if a base model is installed")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE_DEFAULT,
                        help="takes per step (per GPU; base: default 24 on CPU, 64 on CUDA)")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--checkpoint-every", type=int, default=200, metavar="STEPS")
    parser.add_argument("--no-preview", action="store_true",
                        help="do not synthesise a preview at each checkpoint")
    parser.add_argument("--preview-text", help="sentence spoken by each preview")
    parser.add_argument("--vocoder", type=Path,
                        help="HiFi-GAN checkpoint for previews (default: the installed "
                             "coqui-hifigan-v2-ljspeech, else Griffin-Lim)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--frames-per-step", dest="r", type=int,
                        help="decoder frames per step, Tacotron2's r (scratch only)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    group = parser.add_argument_group("base voice (base; tts when it must build one)")
    group.add_argument("--minutes", type=float,
                       help="base: minutes of Piper speech to learn from (default 60 on "
                            "CPU, 180 on CUDA)")
    group.add_argument("--base-minutes", type=float,
                       help="tts: --minutes of the base built first when none exists")
    group.add_argument("--base-steps", type=int,
                       help="tts: --max-steps of the base built first when none exists")
    scoring = parser.add_argument_group("self-scoring (tts: on the held-out takes)")
    scoring.add_argument("--no-score", action="store_true",
                         help="tts: do not score the voice (Whisper round trip, resemblance "
                              "to your held-out takes) nor pick the best checkpoint")
    scoring.add_argument("--score-every", type=int, default=0, metavar="STEPS",
                         help="tts: also score at checkpoints every STEPS steps and keep the "
                              "best (default 0: only the final voice)")
    from voicebot.training.asr_cli import add_asr_arguments  # recognition adaptation

    add_asr_arguments(parser)


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
        if args.data is None or args.out is None:
            log.error("--data and --out are required for %s", args.target)
            return 2
        from voicebot.training.asr_cli import run_asr

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
    if args.batch_size != BATCH_SIZE_DEFAULT:
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
