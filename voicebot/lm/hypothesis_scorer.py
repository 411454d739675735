"""How likely the chat model finds each recognition hypothesis as the user's next message.

    scorer = load_hypothesis_scorer()              # the embedded chat model, 1 CPU thread
    scores = scorer.score(["Anneliese.", "And at least."],
                          [{"role": "assistant", "content": "What's your name?"}])
    scores[0].logprob  # log P("Anneliese.<|im_end|>" | the conversation), natural log

The hypotheses are rendered as the user's turn with the model's own chat template, after
the conversation so far (what the bot just asked makes some answers likely), and scored
up to and including the end-of-turn token, so a hypothesis that stops mid-phrase pays for
it. Each text is scored in its written form (``written_form``: capital first letter, an
end mark), so that Whisper's random casing and punctuation do not decide.
``HypothesisScore`` keeps the summed log-probability and the token count;
``voicebot.asr.rescoring`` uses the sum (the end-of-turn token charges a hypothesis that
stops early; the per-token mean measured worse, see its docstring).

Two scorers share the text side (``HypothesisTokens``):
- ``onnx_hypothesis_scorer.OnnxHypothesisScorer``, the app's on the CPU: the model's
  exported scoring graph (``onnx_scorer_export``), every hypothesis a row of one batched
  run over the conversation's cached keys and values, no torch in the process (~160 MB
  of weights, int4/int8 as the chat decoder's);
- ``HypothesisScorer``: a float32 transformers copy (~0.55 GB), for models that do not
  export, and the reference the ONNX scores are tested against (within 0.15 nats a token;
  the differences between hypotheses within 0.6 nats).

Cost (the point of the design): one run for the whole n-best.
- The conversation prefix is computed once and its keys and values kept for the next
  call with the same context (the user often retries after the same question);
  ``prepare(context)`` computes it ahead, e.g. while the bot's reply is spoken.
- The tokens all hypotheses share at their start are computed once, on that cache.
- The rest of every hypothesis runs as one batch over the shared cache (right-padded:
  causal attention never lets a padding token reach a real one).
The cost is the number of distinct hypothesis tokens times a 135M model's arithmetic per
token. ``voicebot bench rescoring`` over 227 clips on this repository's 2-core CPU, what
rescoring really scores (median 2 distinct word sequences), conversation cached: the ONNX
scorer median 77 ms, p90 145 ms on 2 threads; the torch float32 copy median 338 ms on 1
(2026-12-07). A raw 5-best of names (five texts) on an idle machine: ONNX 270 ms on 1
thread, 166 ms on 2; torch 331 / 253 ms. (bfloat16 torch, AMX elsewhere, was 1.7x faster
but moved scores by up to 0.8 nats; torch's dynamic int8 quantisation moved a
hypothesis' score by up to 8 nats with what else was in the batch, because it quantises
activations per tensor: the ONNX graph quantises them per row.)
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicebot.lm.loading import model_folder
from voicebot.settings import ChatSettings

Message = dict[str, str]
# Stands for the user's text while the template is rendered, then split off.
_SLOT = "\x00HYPOTHESIS\x00"
# Conversation messages kept as context (the latest ones: the user's last message and the
# bot's reply): the bot's question is what matters. Every new context is computed on the
# critical path unless ``prepare`` ran (~4-8 ms a token on 1 thread here), and names said
# long ago are the user LM's job (``asr.adapt_vocab``).
CONTEXT_MESSAGES = 2
# Characters of each context message kept (its end: a reply ends with its question).
CONTEXT_CHARS = 240


@dataclass(frozen=True)
class HypothesisScore:
    logprob: float  # natural-log P(text and the end of the turn | context)
    n_tokens: int  # tokens scored, the end-of-turn token included

    @property
    def per_token(self) -> float:
        return self.logprob / max(1, self.n_tokens)


def written_form(text: str) -> str:
    """The text as a typed message: a capital first letter and a closing full stop when it
    has no end mark. Whisper's alternatives differ in both at random ("in March." /
    "March.", "Jane Austen" / "Jane Austin."), and the chat model charged them up to 9
    nats for it, more than the words' difference."""
    text = " ".join(text.split())
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".?!…" else text + "."


def context_messages(history: Sequence[Message] | str | None) -> list[Message]:
    """The latest user/assistant messages with text (a string: one bot message)."""
    if history is None:
        return []
    if isinstance(history, str):
        history = [{"role": "assistant", "content": history}]
    out = []
    for message in history:
        role, text = message.get("role"), str(message.get("content", "")).strip()
        if role in ("user", "assistant") and text:
            out.append({"role": role, "content": text[-CONTEXT_CHARS:]})
    return out[-CONTEXT_MESSAGES:]


def shared_start(seqs: Sequence[Sequence[int]]) -> int:
    """How many tokens all ``seqs`` start with, leaving each at least one of its own
    (those are computed once, not once per hypothesis)."""
    shared = 0
    while shared < min(len(s) for s in seqs) - 1 and len({s[shared] for s in seqs}) == 1:
        shared += 1
    return shared


class HypothesisTokens:
    """What every scorer shares: the conversation and the hypotheses as the chat model's
    tokens (a transformers tokenizer or ``tokenizer_file.FileTokenizer``), one call at a
    time, and the conversation computed ahead (``prepare``; each scorer keeps it its own
    way in ``_cached_prefix``)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.end_id = end if isinstance(end, int) and end >= 0 else tokenizer.eos_token_id
        self._lock = threading.Lock()
        self._prefix_ids: list[int] = []
        self.prefix_reused = False  # whether the last score() found its prefix cached

    def _cached_prefix(self, prefix: list[int]) -> Any:
        raise NotImplementedError

    def prepare(self, context: Sequence[Message] | str | None) -> None:
        """Compute the context now, so the next ``score`` with it only runs the
        hypotheses."""
        with self._lock:
            self._cached_prefix(self.prefix_ids(context))

    def prefix_ids(self, context: Sequence[Message] | str | None) -> list[int]:
        """The tokens before the user's text: the conversation, then the user-turn header."""
        messages = [*context_messages(context), {"role": "user", "content": _SLOT}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False)
        head = text[:text.index(_SLOT)]
        return list(self.tokenizer(head, add_special_tokens=False)["input_ids"])

    def text_ids(self, text: str) -> list[int]:
        ids = self.tokenizer(written_form(text), add_special_tokens=False)["input_ids"]
        return [*ids, self.end_id]


class HypothesisScorer(HypothesisTokens):
    """Scores hypotheses with a transformers causal LM; thread-safe (one call at a time)."""

    def __init__(self, model: Any, tokenizer: Any, name: str = ""):
        super().__init__(tokenizer)
        self.model = model
        self.name = name or type(model).__name__
        self._prefix: tuple[Any, Any] | None = None  # (cache, logits after the prefix)

    def score(self, texts: Sequence[str],
              context: Sequence[Message] | str | None = None) -> list[HypothesisScore]:
        """log P(text + end of turn | context) for each text, in one batched pass."""
        if not texts:
            return []
        import torch

        with self._lock, torch.inference_mode():
            prefix = self.prefix_ids(context)
            cache, logits = self._cached_prefix(prefix)
            seqs = [self.text_ids(t) for t in texts]
            # Tokens every hypothesis starts with: computed once (each keeps at least one).
            shared = shared_start(seqs)
            cache = copy.deepcopy(cache)
            base = 0.0
            if shared:
                ids = torch.tensor([seqs[0][:shared]], dtype=torch.long)
                out = self.model(input_ids=ids, cache=cache, use_cache=True)
                steps = torch.cat([logits[None, None], out.logits[:, :-1]], dim=1)
                logp = torch.log_softmax(steps.float(), dim=-1)[0]
                base = float(logp[torch.arange(shared), ids[0]].sum())
                logits = out.logits[0, -1]
            rests = [s[shared:] for s in seqs]
            width = max(len(r) for r in rests)
            batch = torch.full((len(rests), width), self.end_id, dtype=torch.long)
            for row, rest in enumerate(rests):
                batch[row, :len(rest)] = torch.tensor(rest)
            cache.batch_repeat_interleave(len(rests))
            first = torch.log_softmax(logits.float(), dim=-1)
            scores = []
            if width > 1:
                out = self.model(input_ids=batch[:, :-1], cache=cache,
                                 use_cache=False)
                logp = torch.log_softmax(out.logits.float(), dim=-1)
            for row, rest in enumerate(rests):
                total = base + float(first[rest[0]])
                if len(rest) > 1:
                    positions = torch.arange(len(rest) - 1)
                    total += float(logp[row, positions, batch[row, 1:len(rest)]].sum())
                scores.append(HypothesisScore(total, len(seqs[row])))
            return scores

    def _cached_prefix(self, prefix: list[int]) -> tuple[Any, Any]:
        import torch
        from transformers import DynamicCache

        self.prefix_reused = self._prefix is not None and prefix == self._prefix_ids
        if not self.prefix_reused:
            cache = DynamicCache(config=self.model.config)
            with torch.inference_mode():
                out = self.model(input_ids=torch.tensor([prefix], dtype=torch.long),
                                 cache=cache, use_cache=True, logits_to_keep=1)
            self._prefix_ids, self._prefix = prefix, (cache, out.logits[0, -1])
        assert self._prefix is not None
        return self._prefix


def load_hypothesis_scorer(model: str | Path | None = None, threads: int | None = 1,
                           backend: str = "auto") -> HypothesisTokens:
    """The chat model (default: the embedded one, ``ChatSettings().model``) as a scorer on
    the CPU: the exported ONNX scoring graph (``onnx_hypothesis_scorer``) when the model
    exports ("auto" or "onnx"), else a float32 torch copy ("torch")."""
    from voicebot.lm.loading import choose_backend

    folder, model_id = model_folder(model if model is not None else ChatSettings().model)
    if backend == "auto":
        backend = choose_backend(folder, device="cpu")
        if not (folder / "tokenizer.json").is_file():
            backend = "torch"  # a SentencePiece-only folder: transformers' tokenizer
    if backend == "onnx":
        from voicebot.lm.onnx_hypothesis_scorer import load_onnx_hypothesis_scorer

        return load_onnx_hypothesis_scorer(folder, model_id, threads or 1)
    return load_torch_hypothesis_scorer(folder, threads)


def load_torch_hypothesis_scorer(folder: Path, threads: int | None = 1) -> HypothesisScorer:
    """A float32 torch copy of the model in ``folder`` as scorer (~0.55 GB for the embedded
    model). ``threads`` sets torch's process-wide thread count when given (ARCHITECTURE.md,
    CPU thread budget: the caller decides)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads:
        torch.set_num_threads(threads)
    net = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    scorer = HypothesisScorer(net, AutoTokenizer.from_pretrained(folder), "torch-cpu-float32")
    scorer.score(["Hello."])  # warm-up: the first forward allocates
    return scorer
