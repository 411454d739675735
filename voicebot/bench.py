"""`voicebot bench NAME --json`: benchmarks that print JSON.

Speed and memory targets live here, never in timed tests. Each benchmark is a module
function ``run(args) -> dict``; this file only dispatches, importing lazily so one
benchmark's heavy dependencies do not slow the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from voicebot.bench_error import BenchUnfinishedError

# name -> ("module:function" that adds arguments or None, "module:function" returning a dict)
BENCHMARKS: dict[str, tuple[str | None, str]] = {
    # Chat model: first token, first speakable clause, tokens/s against plain transformers.
    "lm": ("voicebot.lm.bench:add_arguments", "voicebot.lm.bench:run"),
    # Chat model over 20-turn conversations: late accuracy, repeats, recall of the user.
    "dialogue": ("voicebot.lm.bench_dialogue:add_arguments",
                 "voicebot.lm.bench_dialogue:run"),
    # Live audio display cost and capture overflows (times Qt widgets, so it lives in ui/).
    "audio": ("voicebot.ui.widgets.scope_bench:add_arguments",
              "voicebot.ui.widgets.scope_bench:run"),
    # Speech synthesis: first audio, real-time factor, ONNX vs Coqui speedup per voice.
    "tts": ("voicebot.tts.bench:add_arguments", "voicebot.tts.bench:run"),
    # Speech recognition: real-time factors, time from release to the final n-best.
    "asr": ("voicebot.asr.bench:add_arguments", "voicebot.asr.bench:run"),
    # Neural n-best rescoring with the chat model: WER where the conversation decides and
    # on the plain sets, per neural weight; ms per n-best.
    "rescoring": ("voicebot.pipeline.bench_rescoring:add_arguments",
                  "voicebot.pipeline.bench_rescoring:run"),
    # Voice training: steps/s of our loop against Coqui's Trainer on the same data.
    "train": ("voicebot.training.bench:add_arguments", "voicebot.training.bench:run"),
    # Voice adaptation on the stand-in user: time to the voice, its WER and resemblance.
    "adapt": ("voicebot.training.bench_adapt:add_arguments",
              "voicebot.training.bench_adapt:run"),
    # The app left alone: CPU % of one core and memory, plots on screen, hidden, minimised.
    "idle": ("voicebot.ui.bench_idle:add_arguments", "voicebot.ui.bench_idle:run"),
    # Whole spoken turns through the virtual devices: voice-to-voice latency, memory.
    "turn": ("voicebot.pipeline.bench_turn:add_arguments",
             "voicebot.pipeline.bench_turn:run"),
    # Echo cancellation in a simulated room: ERLE, self-interruptions, barge-in, CPU.
    "echo": ("voicebot.pipeline.bench_echo:add_arguments",
             "voicebot.pipeline.bench_echo:run"),
    # Hands-free end of turn: false cut-offs in pauses and dead air, learned vs silence.
    "endpoint": ("voicebot.pipeline.bench_endpoint:add_arguments",
                 "voicebot.pipeline.bench_endpoint:run"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS) or None,
                        help="which benchmark to run")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    # Benchmarks add their own options; unknown names are rejected by argparse.
    for add_ref, _ in BENCHMARKS.values():
        if add_ref:
            _load(add_ref)(parser)


def _load(ref: str):
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def run(args: argparse.Namespace) -> int:
    try:
        result = _load(BENCHMARKS[args.name][1])(args)
    except BenchUnfinishedError as exc:
        # A benchmark that cannot produce its figures (a time budget spent, a device
        # missing, a run that failed) says why in one line; -v logs the traceback.
        logging.getLogger(__name__).debug("bench %s failed", args.name, exc_info=True)
        print(f"voicebot bench {args.name}: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=None if args.json else 2)
    print(text)
    sys.stdout.flush()
    return 0
