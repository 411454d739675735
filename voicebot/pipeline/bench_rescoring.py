"""`voicebot bench rescoring --json`: does the chat model's neural rescoring earn its place?

For every clip of the context sets (``testsets.CONTEXT_SETS``: the conversation decides)
and of the plain sets (no conversation), the app's recogniser (Whisper tiny.en int8,
5-best, whole clip, as ``parity``'s app_final) gives its n-best once; the chat model
(``voicebot.lm.hypothesis_scorer``: the ONNX scoring graph as in the app, or
``--rescoring-scorer torch`` for the float32 copy; 1 CPU thread unless
``--rescoring-threads``) scores its distinct word sequences once as the user's reply to
the clip's conversation. Then the rescored WER is computed per set for each neural weight
(n-gram weight and word bonus as shipped), for two length normalisations (the plain sum,
what rescoring uses, or per token like the acoustic score). The chosen weight
is the one with the lowest WER over the context sets among those that make no plain set
worse than weight 0 (ties: the smaller).

Cost: milliseconds per ``score`` call on 1 thread for the engine's raw 5-best (five texts,
spelling variants included, the conversation's cache ready, as after ``prepare``), for
the same with the conversation computed in the call, and for what rescoring really scores
(the distinct word sequences; skipped when there is only one).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

PLAIN_SETS = ["real-sentences", "real-commands", "hibari-sentences", "hibari-commands",
              "espeak-sentences", "espeak-commands"]
WEIGHTS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 1.0]
NORMS = ("sum", "token")
PIPER_VOICE = "piper-en-us-joe-medium"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rescoring-sets", nargs="*", default=None,
                        help="rescoring: set names (default: the context sets and the "
                             "plain ones)")
    parser.add_argument("--rescoring-weights", nargs="*", type=float, default=WEIGHTS,
                        help="rescoring: neural weights to compare")
    parser.add_argument("--rescoring-out", type=Path, default=None,
                        help="rescoring: test-set folder (default: the cache)")
    parser.add_argument("--rescoring-scorer", choices=("auto", "onnx", "torch"),
                        default="auto",
                        help="rescoring: the chat model's scorer (auto: as the app: ONNX "
                             "when the model exports, else torch float32)")
    parser.add_argument("--rescoring-threads", type=int, default=1,
                        help="rescoring: CPU threads of the scorer (default: 1)")
    parser.add_argument("--rescoring-details", action="store_true",
                        help="rescoring: every clip's n-best with its scores")


@dataclass(frozen=True)
class _Score:
    logprob: float
    n_tokens: int


class _Fixed:
    """A scorer answering from scores computed once (the weight grid reuses them).

    "sum": the summed log-probability, what rescoring uses; "token": per token, times
    the list's mean token count (as rescoring treats the acoustic score)."""

    def __init__(self, scores: dict[str, _Score], norm: str):
        self.scores, self.norm = scores, norm

    def score(self, texts, context=None):
        scores = [self.scores[t] for t in texts]
        if self.norm == "sum":
            return scores
        mean = statistics.fmean(max(1, s.n_tokens) for s in scores)
        return [_Score(s.logprob / max(1, s.n_tokens) * mean, s.n_tokens) for s in scores]


def _ms(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {"n": len(values), "median": round(statistics.median(values), 1),
            "mean": round(statistics.fmean(values), 1),
            "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
            "max": round(ordered[-1], 1)}


def _details(row: dict, lm, shipped) -> dict:
    from voicebot.asr.rescoring import rescore

    ranked = rescore(row["hyps"], lm, shipped).hypotheses
    return {"ref": row["reference"], "context": row["context"],
            "nbest": [{"text": h.text, "total": round(h.total_score, 2),
                       "lm": round(h.lm_score or 0.0, 2),
                       "neural": round(row["scores"][h.text].logprob, 2)
                       if h.text in row["scores"] else None,
                       "tokens": row["scores"][h.text].n_tokens
                       if h.text in row["scores"] else None} for h in ranked]}


def piper_speaker(voice_id: str = PIPER_VOICE):
    """``speak(text, length_scale)`` with the embedded Piper voice, its sampling noise off
    (``testsets.voice_set``)."""
    from dataclasses import replace

    from voicebot.tts.base import collect
    from voicebot.tts.voices import load_voice

    voice = load_voice(voice_id)
    voice.set_noise(0.0, 0.0)  # the same audio for a text every time
    base = voice.config

    def speak(text: str, length_scale: float):
        voice.config = replace(base, length_scale=base.length_scale * length_scale)
        return collect(voice.stream(text))

    return speak


def run(args: argparse.Namespace) -> dict:
    import torch

    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import read_manifest
    from voicebot.asr.factory import ngram_from_settings
    from voicebot.asr.rescoring import Weights, merge_variants, rescore
    from voicebot.asr.testsets import CONTEXT_SETS, build, read_contexts
    from voicebot.asr.wer import count_errors
    from voicebot.asr.whisper_engine import WhisperRecognizer, load_whisper
    from voicebot.lm.hypothesis_scorer import load_hypothesis_scorer
    from voicebot.settings import AsrSettings

    sets = getattr(args, "rescoring_sets", None) or [*CONTEXT_SETS, *PLAIN_SETS]
    weights_grid = sorted(set(getattr(args, "rescoring_weights", None) or WEIGHTS) | {0.0})
    manifests = build(getattr(args, "rescoring_out", None), sets=sets,
                      speakers={"piper-context": piper_speaker()}
                      if "piper-context" in sets else None)
    model = load_whisper("whisper-tiny-en", "cpu", cpu_threads=1)
    torch.set_num_threads(1)
    recognizer = WhisperRecognizer(model, nbest=5, streaming=False)
    settings = AsrSettings()
    lm, shipped = ngram_from_settings(settings), Weights.from_settings(settings)
    started = time.perf_counter()
    threads = getattr(args, "rescoring_threads", 1)
    scorer = load_hypothesis_scorer(threads=threads,
                                    backend=getattr(args, "rescoring_scorer", "auto"))
    load_s = time.perf_counter() - started

    items: dict[str, list[dict]] = {}
    cost = {"nbest5_cached": [], "nbest5_uncached": [], "distinct_cached": []}
    distinct_counts = []
    for name, manifest in manifests.items():
        contexts = read_contexts(manifest)
        rows = []
        for utt in read_manifest(manifest):
            key = utt.audio.relative_to(manifest.parent).as_posix()
            context = contexts.get(key)
            recognizer.feed(read_audio_file(utt.audio))
            hyps = recognizer.finish(5)
            texts = [h.text for h in merge_variants(hyps)]
            distinct_counts.append(len(texts))
            five = [h.text for h in hyps]
            if len(five) > 1:
                scorer.score(["x"], "a different conversation")  # drop the cached prefix
                t0 = time.perf_counter()
                scorer.score(five, context)
                t1 = time.perf_counter()
                scorer.score(five, context)
                t2 = time.perf_counter()
                cost["nbest5_uncached"].append(1000 * (t1 - t0))
                cost["nbest5_cached"].append(1000 * (t2 - t1))
            scores = {}
            if len(texts) > 1:
                t0 = time.perf_counter()
                result = scorer.score(texts, context)
                cost["distinct_cached"].append(1000 * (time.perf_counter() - t0))
                scores = {t: _Score(s.logprob, s.n_tokens)
                          for t, s in zip(texts, result, strict=True)}
            oracle = min((count_errors(utt.reference, t).errors for t in texts), default=0)
            rows.append({"reference": utt.reference, "context": context, "hyps": hyps,
                         "scores": scores, "oracle": oracle})
        items[name] = rows

    def evaluate(weight: float, norm: str) -> dict:
        out = {}
        for name, rows in items.items():
            errors = words = 0
            changed = []
            for row in rows:
                chosen = rescore(row["hyps"], lm, Weights(shipped.acoustic, shipped.lm,
                                                         shipped.word_bonus, weight),
                                 _Fixed(row["scores"], norm), row["context"]).text
                base = rescore(row["hyps"], lm, Weights(shipped.acoustic, shipped.lm,
                                                       shipped.word_bonus, 0.0)).text
                counts = count_errors(row["reference"], chosen)
                errors += counts.errors
                words += counts.ref_words
                if chosen != base:
                    changed.append({"ref": row["reference"], "without": base,
                                    "with": chosen})
            out[name] = {"wer": round(errors / max(1, words), 4), "errors": errors,
                         "words": words, "changed": changed}
        return out

    grid = {norm: {str(w): evaluate(w, norm) for w in weights_grid} for norm in NORMS}
    context_names = [n for n in items if n in CONTEXT_SETS]
    plain_names = [n for n in items if n not in CONTEXT_SETS]

    def choose(norm: str) -> float:
        base = grid[norm]["0.0"]
        allowed = [w for w in weights_grid
                   if all(grid[norm][str(w)][n]["errors"] <= base[n]["errors"]
                          for n in plain_names)]
        return min(allowed, key=lambda w: (
            sum(grid[norm][str(w)][n]["errors"] for n in context_names), w))

    chosen = {norm: choose(norm) for norm in NORMS}
    norm = min(NORMS, key=lambda m: (sum(grid[m][str(chosen[m])][n]["errors"]
                                         for n in context_names), m != "sum"))
    weight = chosen[norm]
    per_set = {}
    for name in items:
        at0, atw = grid[norm]["0.0"][name], grid[norm][str(weight)][name]
        per_set[name] = {
            "kind": "context" if name in CONTEXT_SETS else "plain",
            "utterances": len(items[name]), "words": at0["words"],
            "wer_neural_0": at0["wer"], "wer_neural_chosen": atw["wer"],
            "oracle_wer": round(sum(r["oracle"] for r in items[name])
                                / max(1, at0["words"]), 4),
            "changed": atw["changed"],
        }
        if getattr(args, "rescoring_details", False):
            per_set[name]["details"] = [_details(row, lm, shipped) for row in items[name]]
    return {
        "scorer": scorer.name, "threads": threads,
        "scorer_load_s": round(load_s, 2),
        "weights": {"acoustic": shipped.acoustic, "lm": shipped.lm,
                    "word_bonus": shipped.word_bonus},
        "chosen": {"neural_weight": weight, "normalisation": norm,
                   "per_normalisation": chosen},
        "sets": per_set,
        "wer_by_weight": {m: {w: {n: r["wer"] for n, r in by_set.items()}
                              for w, by_set in grid[m].items()} for m in NORMS},
        "cost_ms": {k: _ms(v) for k, v in cost.items()},
        "distinct_hypotheses": _ms([float(c) for c in distinct_counts]),
    }
