"""``voicebot bench train``: training speed of our loop beside Coqui's own Trainer.

Both train the same Tacotron2 config (from scratch, random init) on the same LJSpeech
folder with the same batch size on the same device, for a few steps each:

- ours: the ``voicebot train tts`` process (mels computed once, plain torch loop, AMP on
  CUDA); steps/s from the times of its ``step`` events;
- Coqui's ``trainer.Trainer`` in this process (its own data loader computing mels per
  batch, eval and test sentences off); steps/s from the times its model's
  ``train_step`` is entered.

The first step of each is left out (allocation and warm-up). Peak memory is the child's
peak RSS on CPU, or torch's peak allocated GPU memory on CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from voicebot.bench_error import BenchUnfinishedError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("train benchmark")
    group.add_argument("--train-data", type=Path,
                       help="LJSpeech folder (default: the pocketsphinx test utterances)")
    group.add_argument("--train-steps", type=int, default=4, help="steps timed per trainer")
    group.add_argument("--train-batch-size", type=int,
                       help="default: every take in one batch, so both trainers see "
                            "exactly the same data at every step")
    group.add_argument("--train-device", choices=["auto", "cpu", "cuda"], default="auto")
    group.add_argument("--train-r", type=int, default=2, help="decoder frames per step")
    group.add_argument("--train-threads", type=int, default=1, help="torch CPU threads")
    group.add_argument("--train-skip-coqui", action="store_true",
                       help="time only our loop")


def _rate(times: list[float]) -> float | None:
    """Steps per second from the times of consecutive steps (the first is warm-up)."""
    if len(times) < 3:
        return None
    return (len(times) - 2) / (times[-1] - times[1])


def run_ours(data: Path, out: Path, args) -> dict:
    command = [sys.executable, "-m", "voicebot", "train", "tts", "--data", str(data),
               "--out", str(out), "--scratch", "--no-preview",
               "--max-steps", str(args.train_steps + 1),
               "--checkpoint-every", "1000000", "--batch-size", str(args.train_batch_size),
               "--frames-per-step", str(args.train_r), "--device", args.train_device,
               "--threads", str(args.train_threads)]
    from voicebot.training.progress import parse_line

    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    events = [e for e in map(parse_line, proc.stdout.splitlines()) if e]
    if proc.returncode != 0:
        raise BenchUnfinishedError(
            f"training process failed ({proc.returncode}): {proc.stderr[-2000:]}")
    start = next(e for e in events if e["event"] == "start")
    steps = [e for e in events if e["event"] == "step"]
    rate = _rate([e["time"] for e in steps])
    gpu = max((e.get("gpu_mem_mb") or 0 for e in steps), default=0)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"steps_per_s": rate, "device": start["device"], "precision": start["precision"],
            "samples_per_s": rate * args.train_batch_size if rate else None,
            "peak_mem_mb": round(gpu if gpu else rss_mb, 1),
            "peak_mem_kind": "gpu_allocated" if gpu else "process_rss",
            "takes": start["takes"]}


def run_coqui(data: Path, out: Path, args) -> dict:
    """Coqui's Trainer on the same data and config; returns its steps/s."""
    import torch
    from trainer import Trainer, TrainerArgs
    from TTS.tts.configs.shared_configs import BaseDatasetConfig
    from TTS.tts.datasets import load_tts_samples
    from TTS.tts.models.tacotron2 import Tacotron2
    from TTS.tts.utils.text.tokenizer import TTSTokenizer
    from TTS.utils.audio import AudioProcessor

    from voicebot.training.tts_train import scratch_config

    torch.set_num_threads(args.train_threads)
    use_cuda = args.train_device == "cuda" or (args.train_device == "auto"
                                               and torch.cuda.is_available())
    config = scratch_config(args.train_r)
    config.batch_size = config.eval_batch_size = args.train_batch_size
    config.num_loader_workers = config.num_eval_loader_workers = 0
    config.run_eval = False
    config.test_delay_epochs = 10**6
    config.test_sentences = []
    config.print_step = 1
    config.save_step = 10**9
    config.save_checkpoints = False
    config.save_best_after = 10**9
    config.mixed_precision = use_cuda
    config.output_path = str(out)
    config.datasets = [BaseDatasetConfig(formatter="ljspeech", meta_file_train="metadata.csv",
                                         path=str(data))]
    samples, _ = load_tts_samples(config, eval_split=False)
    steps_per_epoch = max(1, math.ceil(len(samples) / args.train_batch_size))
    config.epochs = math.ceil((args.train_steps + 1) / steps_per_epoch)
    audio_processor = AudioProcessor(config.audio)
    tokenizer, config = TTSTokenizer.init_from_config(config)
    model = Tacotron2(config, audio_processor, tokenizer, speaker_manager=None)
    times: list[float] = []
    original = model.train_step

    def timed_train_step(*a, **k):
        times.append(time.perf_counter())
        return original(*a, **k)

    model.train_step = timed_train_step
    trainer = Trainer(TrainerArgs(), config, str(out), model=model, train_samples=samples,
                      eval_samples=None, parse_command_line_args=False,
                      gpu=0 if use_cuda else None)
    # Coqui prints its logs to stdout; keep ours for the JSON result.
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit()
    return {"coqui_trainer_steps_per_s": _rate(times), "coqui_trainer_steps": len(times)}


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-train-") as tmp:
        tmp_path = Path(tmp)
        data = args.train_data
        if data is None:
            from voicebot.training.sample_data import build

            data = build(tmp_path / "data")
        if args.train_batch_size is None:
            from voicebot.training.dataset import read_metadata

            args.train_batch_size = len(read_metadata(Path(data) / "metadata.csv"))
        result = {"benchmark": "train", "batch_size": args.train_batch_size,
                  "r": args.train_r, "threads": args.train_threads,
                  "steps_timed": args.train_steps}
        result.update(run_ours(data, tmp_path / "ours", args))
        if not args.train_skip_coqui:
            result.update(run_coqui(data, tmp_path / "coqui", args))
            if result.get("steps_per_s") and result.get("coqui_trainer_steps_per_s"):
                result["speedup_vs_coqui"] = round(
                    result["steps_per_s"] / result["coqui_trainer_steps_per_s"], 3)
        return json.loads(json.dumps(result))  # plain types only
