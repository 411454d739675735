"""The chat model as n-best scorer on ONNX Runtime: no torch, and a fraction of the time.

Same contract as ``hypothesis_scorer.HypothesisScorer`` (``score(texts, context)``,
``prepare(context)``, ``prefix_reused``); the graph is ``onnx_scorer_export``'s, exported
once per model into the models dir (``converted/<model id>/onnx-cpu-scorer``) and
rebuilt when the weights or the graph change.

One run per call scores the whole n-best: the conversation's keys and values are computed
by ``prepare`` (or on the first call with a new conversation) and kept; each row of the
batch is the conversation's last token followed by one hypothesis, right-padded, so the
run computes every hypothesis token once and the output head only where a token is
scored. Tokens all hypotheses start with ("My name is ...") run once, as one row, before
the batch (as the torch scorer does).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.lm import onnx_scorer_export
from voicebot.lm.hypothesis_scorer import (
    HypothesisScore,
    HypothesisTokens,
    Message,
    shared_start,
)

log = logging.getLogger(__name__)

CONVERSION_NAME = "onnx-cpu-scorer"
# Added to the attention scores a query must not see (exp() of it is 0 in float32).
MASKED = -1e9


def exported_scorer(model_dir: Path, model_id: str | None = None) -> Path:
    """The folder with the scoring graph of ``model_dir``, exporting it the first time."""
    from voicebot.lm.onnx_backend import exported

    return exported(model_dir, model_id, CONVERSION_NAME, onnx_scorer_export.export_scorer,
                    onnx_scorer_export.EXPORT_VERSION)


def causal_bias(new: int, past: int, groups: int) -> np.ndarray:
    """[1, 1, groups * new, past + new]: query t sees the past and new positions <= t."""
    allowed = np.arange(past + new)[None, :] <= past + np.arange(new)[:, None]
    bias = np.where(allowed, 0.0, MASKED).astype(np.float32)
    return np.tile(bias, (groups, 1))[None, None]


class OnnxHypothesisScorer(HypothesisTokens):
    """Scores hypotheses with the exported scoring graph; thread-safe (one call at a time)."""

    def __init__(self, export_dir: Path, tokenizer: Any, threads: int = 1):
        super().__init__(tokenizer)
        self.layout = json.loads((export_dir / onnx_scorer_export.LAYOUT_FILE)
                                 .read_text("utf-8"))
        if self.layout.get("export_version") != onnx_scorer_export.EXPORT_VERSION:
            raise ValueError(f"{export_dir} was exported by another voicebot version; "
                             "delete it to export again")
        from voicebot.lm.onnx_backend import cpu_session

        self.session = cpu_session(export_dir / onnx_scorer_export.MODEL_FILE, threads)
        self.name = "onnxruntime-cpu-scorer"
        self.groups = self.layout["heads"] // self.layout["kv_heads"]
        self._names = [f"present_{i}_{kind}" for i in range(self.layout["layers"])
                       for kind in ("k", "v")]
        self._past: dict[str, np.ndarray] = {}

    def _run(self, ids: np.ndarray, past: dict[str, np.ndarray], targets: np.ndarray
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        rows, new = ids.shape
        cached = next(iter(past.values())).shape[2]
        if cached + new > self.layout["max_positions"]:
            raise ValueError(f"{cached + new} tokens to score; the scorer holds "
                             f"{self.layout['max_positions']}")
        feeds = {"input_ids": ids,
                 "position_ids": np.broadcast_to(
                     np.arange(cached, cached + new, dtype=np.int64), (rows, new)).copy(),
                 "attention_bias": causal_bias(new, cached, self.groups),
                 "targets": targets, **past}
        outputs = self.session.run(["token_logprobs", *self._names], feeds)
        return outputs[0], dict(zip(self._names, outputs[1:], strict=True))

    def _cached_prefix(self, prefix: list[int]) -> dict[str, np.ndarray]:
        """The keys and values of every prefix token but the last (each hypothesis row
        starts with that one, so its logits score the hypothesis' first token)."""
        self.prefix_reused = bool(self._past) and prefix == self._prefix_ids
        if not self.prefix_reused:
            kv_heads, head_dim = self.layout["kv_heads"], self.layout["head_dim"]
            empty = np.zeros((1, kv_heads, 0, head_dim), np.float32)
            past = _as_past(dict.fromkeys(self._names, empty))
            if len(prefix) > 1:
                _, present = self._run(np.asarray([prefix[:-1]], np.int64), past,
                                       np.zeros((1, 1), np.int64))
                past = _as_past(present)
            self._prefix_ids, self._past = prefix, past
        return self._past

    def score(self, texts: Sequence[str],
              context: Sequence[Message] | str | None = None) -> list[HypothesisScore]:
        """log P(text + end of turn | context) for each text, in one batched run."""
        if not texts:
            return []
        with self._lock:
            prefix = self.prefix_ids(context)
            past = self._cached_prefix(prefix)
            seqs = [self.text_ids(t) for t in texts]
            last, base = prefix[-1], 0.0
            # Tokens every hypothesis starts with ("My name is ..."): one row, once.
            shared = shared_start(seqs) if len(seqs) > 1 else 0
            if shared:
                head = seqs[0][:shared]
                logprobs, present = self._run(np.asarray([[last, *head[:-1]]], np.int64),
                                              past, np.asarray([head], np.int64))
                base = float(logprobs.sum(dtype=np.float64))
                past = _as_past(present)
                last, seqs = head[-1], [s[shared:] for s in seqs]
            width = max(len(s) for s in seqs)
            ids = np.full((len(seqs), width), self.end_id, np.int64)
            targets = np.zeros((len(seqs), width), np.int64)
            for row, seq in enumerate(seqs):
                ids[row, :len(seq)] = [last, *seq[:-1]]
                targets[row, :len(seq)] = seq
            logprobs, _ = self._run(ids, past, targets)
            return [HypothesisScore(
                base + float(logprobs[row, :len(seq)].sum(dtype=np.float64)), shared + len(seq))
                for row, seq in enumerate(seqs)]

    def sentence_end_logprob(self, text: str,
                             context: Sequence[Message] | str | None = None) -> float:
        """ln P(a sentence ends right after ``text`` | context): the chat model's summed
        probability of ".", "?" and "!" as the user's next token. "What is the capital"
        -10.2, "What is the capital of France" -0.1 (smollm2-135m-instruct, no context).
        ``text`` is taken as written (no end mark added)."""
        with self._lock:
            prefix = self.prefix_ids(context)
            past = self._cached_prefix(prefix)
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if not ids:
                raise ValueError("no text to score")
            # The words once (the prefix's last token, then all but the last word
            # token), then each end mark after the last one, as rows sharing that past.
            _, present = self._run(np.asarray([[prefix[-1], *ids[:-1]]], np.int64), past,
                                   np.asarray([ids], np.int64))
            past = _as_past(present)
            marks = self._end_mark_ids
            logprobs, _ = self._run(np.full((len(marks), 1), ids[-1], np.int64), past,
                                    np.asarray([[m] for m in marks], np.int64))
            return float(np.logaddexp.reduce(logprobs[:, 0].astype(np.float64)))

    @functools.cached_property
    def _end_mark_ids(self) -> list[int]:
        """The tokens of ".", "?" and "!" (tokenised once, not at every partial)."""
        marks = []
        for mark in (".", "?", "!"):
            ids = self.tokenizer(mark, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                marks.append(ids[0])
        return marks


def _as_past(present: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A one-row run's ``present_*`` outputs as the next run's ``past_*`` inputs."""
    return {name.replace("present_", "past_", 1): value for name, value in present.items()}


def load_onnx_hypothesis_scorer(folder: Path, model_id: str | None,
                                threads: int = 1) -> OnnxHypothesisScorer:
    """The scorer of the chat model in ``folder`` (exported the first time), warmed up."""
    from voicebot.lm.tokenizer_file import FileTokenizer

    scorer = OnnxHypothesisScorer(exported_scorer(folder, model_id), FileTokenizer(folder),
                                  threads)
    scorer.score(["Hello."])  # the first run allocates
    return scorer
