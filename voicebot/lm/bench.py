"""`voicebot bench lm`: how fast the chat model answers, against plain transformers.

Same prompt (system prompt + BENCH_QUESTION) for every path, greedy decoding, the same
number of new tokens (end-of-turn is suppressed so every path writes exactly
``--lm-tokens``), the same CPU thread count. Reported, as medians over ``--lm-runs``:

- ``ttft_ms``: from the call to ``stream()`` to the first text piece, with the system
  prompt already computed (as in the app, where it is computed at load);
  ``ttft_cold_ms`` computes the whole prompt;
- ``first_clause_ms``: from the call to the first piece the speech splitter hands out;
- ``tokens_per_s``: decode speed after the first token;
- ``naive_tokens_per_s`` / ``naive_ttft_ms``: ``model.generate`` in float32 on torch, in
  this same run; ``speedup`` = tokens_per_s / naive_tokens_per_s;
- with one thread, ``tokens_per_cpu_s`` and ``naive_tokens_per_cpu_s``: tokens per second
  of CPU time of the generating thread, i.e. the speed on an idle core. On a machine
  shared with other work, wall-clock rates swing 2-3x from run to run; these do not.

The machine's load average is reported with the numbers: on a shared 2-core machine it
decides more than any optimisation. ``--lm-busy-threads 1`` keeps the other core busy
(as TTS would be while the reply is generated) for both paths.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from voicebot.lm.onnx_backend import default_threads
from voicebot.lm.speech_shaping import ClauseSplitter
from voicebot.settings import load_settings

BENCH_QUESTION = "Can you tell me a little about the history of Paris?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lm benchmark")
    group.add_argument("--lm-model", help="catalog id or folder (default: from settings)")
    group.add_argument("--lm-backend", default="auto", choices=("auto", "onnx", "torch"))
    group.add_argument("--lm-threads", type=int, help="CPU threads for both paths "
                       "(default: the chat model's default share)")
    group.add_argument("--lm-tokens", type=int, default=64, help="new tokens per run")
    group.add_argument("--lm-runs", type=int, default=3, help="runs per path (median)")
    group.add_argument("--lm-skip-naive", action="store_true",
                       help="do not measure plain transformers (saves ~1 minute)")
    group.add_argument("--lm-busy-threads", type=int, default=0,
                       help="keep this many other cores busy while the chat model runs "
                            "(as TTS or ASR would be): the stages measured together")


def _forbid(token_ids: frozenset[int]):
    def processor(_generated: Any, logits: np.ndarray) -> np.ndarray:
        logits[list(token_ids)] = -np.inf
        return logits
    return processor


@contextlib.contextmanager
def _busy_cores(count: int) -> Iterator[None]:
    """``count`` threads each burning one core without holding the GIL (hashlib releases
    it for large buffers), like a TTS or ASR stage running beside the chat model."""
    stop = threading.Event()
    data = os.urandom(1 << 20)

    def burn() -> None:
        while not stop.is_set():
            hashlib.sha256(data).digest()

    threads = [threading.Thread(target=burn, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def _fast_run(model: Any, history: list[dict[str, str]], warm: bool) -> dict[str, float]:

    if warm:
        model.warm_up()  # cache = system prompt (+ a different question): as in the app
    else:
        model.backend.reset()
    splitter = ClauseSplitter()
    first_clause = None
    started = time.perf_counter()
    for piece in model.stream(history):
        if first_clause is None and splitter.push(piece):
            first_clause = time.perf_counter() - started
    if first_clause is None and splitter.flush():  # the whole reply was one clause
        first_clause = time.perf_counter() - started
    stats = model.last_stats
    return {"ttft_ms": 1000 * stats.first_token_s,
            "first_clause_ms": None if first_clause is None else 1000 * first_clause,
            "tokens_per_s": stats.tokens_per_s, "tokens_per_cpu_s": stats.tokens_per_cpu_s,
            "new_tokens": stats.new_tokens,
            "reused_tokens": stats.reused_tokens, "prompt_tokens": stats.prompt_tokens}


def _naive(folder: Any, prompt_ids: list[int], tokens: int, threads: int,
           runs: int) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        ids = torch.tensor([prompt_ids])
        kwargs = {"do_sample": False, "pad_token_id": model.config.eos_token_id}

        def timed(n: int) -> tuple[float, float]:
            started, cpu = time.perf_counter(), time.thread_time()
            with torch.inference_mode():
                out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, **kwargs)
            assert out.shape[1] == ids.shape[1] + n
            return time.perf_counter() - started, time.thread_time() - cpu

        timed(2)  # first call allocates
        firsts, rates, cpu_rates = [], [], []
        for _ in range(runs):
            first, first_cpu = timed(1)
            whole, whole_cpu = timed(tokens)
            firsts.append(first)
            rates.append((tokens - 1) / max(whole - first, 1e-9))
            cpu_rates.append((tokens - 1) / max(whole_cpu - first_cpu, 1e-9))
        result = {"naive_ttft_ms": 1000 * statistics.median(firsts),
                  "naive_tokens_per_s": statistics.median(rates)}
        if threads == 1:  # with more threads the work is not all in this thread
            result["naive_tokens_per_cpu_s"] = statistics.median(cpu_rates)
        return result
    finally:
        torch.set_num_threads(previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from transformers.utils import logging as hf_logging

    from voicebot.lm.loading import load_chat_model

    hf_logging.disable_progress_bar()
    threads = args.lm_threads or default_threads()
    load_before = os.getloadavg()
    started = time.perf_counter()
    model = load_chat_model(args.lm_model or _default_model(), backend=args.lm_backend,
                            threads=threads, max_reply_tokens=args.lm_tokens)
    load_s = time.perf_counter() - started
    # Every path writes exactly --lm-tokens tokens: end-of-turn is not allowed.
    model.options = replace(model.options, repetition_penalty=1.0, max_new_tokens=args.lm_tokens,
                            wrap_up_after=None,
                            logits_processors=(_forbid(model.stop_token_ids),))
    history = [{"role": "user", "content": BENCH_QUESTION}]
    _fast_run(model, history, warm=True)  # first run allocates
    with _busy_cores(args.lm_busy_threads):
        warm = [_fast_run(model, history, warm=True) for _ in range(args.lm_runs)]
        cold = [_fast_run(model, history, warm=False) for _ in range(args.lm_runs)]

    def median(rows: list[dict], key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(statistics.median(values), 1) if values else None

    result: dict[str, Any] = {
        "model": args.lm_model or "default", "backend": model.backend.name,
        "threads": threads, "cpu_count": os.cpu_count(),
        "busy_threads": args.lm_busy_threads,
        "prompt_tokens": warm[0]["prompt_tokens"],
        "prompt_tokens_cached": warm[0]["reused_tokens"],
        "new_tokens": warm[0]["new_tokens"], "runs": args.lm_runs,
        "load_s": round(load_s, 2),
        "ttft_ms": median(warm, "ttft_ms"), "ttft_cold_ms": median(cold, "ttft_ms"),
        "first_clause_ms": median(warm, "first_clause_ms"),
        "tokens_per_s": median(warm + cold, "tokens_per_s"),
    }
    if threads == 1:
        result["tokens_per_cpu_s"] = median(warm + cold, "tokens_per_cpu_s")
    if not args.lm_skip_naive:
        from voicebot.lm.loading import model_folder

        folder, _ = model_folder(args.lm_model or _default_model())
        with _busy_cores(args.lm_busy_threads):
            naive = _naive(folder, model.last_prompt.ids, args.lm_tokens, threads,
                           args.lm_runs)
        result.update({key: round(value, 1) for key, value in naive.items()})
        result["speedup"] = round(result["tokens_per_s"] / naive["naive_tokens_per_s"], 2)
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _default_model() -> str:

    return load_settings().chat.model
