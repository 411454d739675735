"""``voicebot train``: fine-tune a voice on recordings (the process the Training tab runs).

    voicebot train tts --data DIR --out DIR [--resume] [--base CHECKPOINT] [--max-steps N]

Progress is printed as JSON lines on stdout (``voicebot.training.progress``); logs go to
stderr. For several GPUs start it with torchrun::

    torchrun --nproc_per_node 4 -m voicebot train tts --data DIR --out DIR
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["tts", "asr", "asr-vocab"],
                        help="what to train: tts (a Tacotron2 voice); asr, asr-vocab: "
                             "adapt recognition (voicebot.training.asr_cli)")
    parser.add_argument("--data", type=Path, required=True,
                        help="dataset folder in the LJSpeech layout (metadata.csv + wavs/)")
    parser.add_argument("--out", type=Path, required=True,
                        help="run folder: checkpoints, previews, progress.jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out")
    parser.add_argument("--base", type=Path,
                        help="Tacotron2 checkpoint to fine-tune from (default: the installed "
                             "coqui-tacotron2-ddc-ljspeech, else from scratch)")
    parser.add_argument("--scratch", action="store_true",
                        help="train from scratch even if a base model is installed")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    parser.add_argument("--batch-size", type=int, default=16, help="takes per step (per GPU)")
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
    from voicebot.training.asr_cli import add_asr_arguments  # recognition adaptation

    add_asr_arguments(parser)


def arguments_ok(args: argparse.Namespace, at_least_one: tuple[str, ...]) -> bool:
    """Checks shared by every training target; logs what is wrong."""
    for name in at_least_one:
        value = getattr(args, name)
        if value is not None and value < 1:
            log.error("--%s must be at least 1", name.replace("_", "-"))
            return False
    if not args.data.is_dir():
        log.error("--data %s is not a folder", args.data)
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if args.target in ("asr", "asr-vocab"):
        from voicebot.training.asr_cli import run_asr

        return run_asr(args)
    from voicebot.training.tts_train import (
        PREVIEW_TEXT,
        StopFlag,
        TrainingError,
        TrainOptions,
        train,
    )

    if not arguments_ok(args, ("max_steps", "batch_size", "checkpoint_every", "r", "threads")):
        return 2
    # Signals first: a cancel that arrives while torch is still importing must count.
    stop = StopFlag()
    stop.install()
    options = TrainOptions(
        data=args.data, out=args.out, resume=args.resume, base=args.base,
        scratch=args.scratch, max_steps=args.max_steps, batch_size=args.batch_size,
        lr=args.lr, checkpoint_every=args.checkpoint_every, preview=not args.no_preview,
        preview_text=args.preview_text or PREVIEW_TEXT, vocoder=args.vocoder,
        device=args.device, r=args.r, seed=args.seed, threads=args.threads)
    try:
        return train(options, stop)
    except TrainingError as exc:
        log.error("%s", exc)
        return 2
