"""Greedy and beam search over Whisper's decoder, in numpy, for any backend.

The backend hands in ``step(ids, origins)``: it feeds the token ids (a list per beam)
after reordering its key/value cache so that row ``i`` continues beam ``origins[i]``,
and returns the log-probabilities [beams, len(ids[0]), vocab] as a numpy array. The
search itself is the same as ``WhisperModel``'s (which runs it on torch tensors): the
prompt and a forced prefix in one call, Whisper's token suppression, beam search that
stops when ``beam_size`` hypotheses ended or, with ``steps_after_first_end``, earlier once
every live beam scores below the best ended one, ranked by mean log-probability per token.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicebot.audio.resample import ASR_RATE

MAX_SECONDS = 30.0
# The decoder may not run away: speech rarely exceeds ~5 tokens/s, so cap well above it.
TOKENS_PER_SECOND_CAP = 8
TOKENS_MIN_CAP = 16
# Log-mel value of Whisper's zero padding for typical speech levels (see
# WhisperModel._silence_tail).
SILENCE_LEVEL = -0.75

HOP_LENGTH = 160  # log-mel: 10 ms hops of 25 ms windows at 16 kHz
N_FFT = 400
# Silent positions right after the speech that its frames attend to one by one (1 s);
# see WhisperModel._context_for.
CONTEXT_EXACT_FRAMES = 50

Step = Callable[[list[list[int]], "list[int] | None"], np.ndarray]


@dataclass
class EncodedAudio:
    """The encoder's view of some audio: what every decode of it starts from (torch
    tensors for ``WhisperModel``, numpy arrays for ``OnnxWhisperModel``)."""

    speech: Any  # encoder states of the audio itself (1 x frames/2 x d_model)
    cross_kv: list[tuple[Any, Any]]  # per decoder layer's keys/values, full window
    n_samples: int  # how much audio (16 kHz samples) was encoded


@dataclass
class DecodedSequence:
    tokens: list[int]  # text tokens after the prompt (the forced prefix included)
    logprob: float  # sum of log-probabilities of all text tokens and end-of-text
    n_decoded: int  # tokens scored (text tokens + end-of-text when finished)
    finished: bool  # ended with end-of-text rather than the length cap

    @property
    def mean_logprob(self) -> float:
        """Log-probability per decoded token: how Whisper ranks and judges hypotheses."""
        return self.logprob / max(1, self.n_decoded)


@dataclass
class DecodeResult:
    sequences: list[DecodedSequence]  # best first (length-normalized score)
    no_speech_prob: float


@dataclass
class SearchSettings:
    eot: int
    suppress: np.ndarray  # bool [vocab]: never emitted
    suppress_at_begin: np.ndarray  # bool [vocab]: not as the first token either


@dataclass
class WhisperSpecials:
    """The token ids and limits a model's configs fix, and what search suppresses."""

    eot: int
    sot: int
    no_timestamps: int
    no_speech: int
    multilingual: bool
    max_target: int  # decoder positions
    max_frames: int  # log-mel frames of the 30 s window
    search: SearchSettings

    @classmethod
    def from_configs(cls, config: dict, generation: dict, tokenizer) -> WhisperSpecials:
        """From config.json and generation_config.json (as dicts) and the tokenizer."""
        eot = int(config["eos_token_id"])
        vocab = int(config["vocab_size"])
        suppress = np.zeros(vocab, dtype=bool)
        suppress[eot + 1:] = True  # every special token and timestamp but end-of-text
        for t in config.get("suppress_tokens") or generation.get("suppress_tokens") or []:
            if 0 <= t < vocab:
                suppress[t] = True
        begin = suppress.copy()
        for t in (config.get("begin_suppress_tokens")
                  or generation.get("begin_suppress_tokens") or []):
            begin[t] = True
        return cls(eot=eot, sot=int(config["decoder_start_token_id"]),
                   no_timestamps=int(generation["no_timestamps_token_id"]),
                   no_speech=tokenizer.convert_tokens_to_ids("<|nocaptions|>"),
                   multilingual=bool(generation.get("is_multilingual", False)),
                   max_target=int(config["max_target_positions"]),
                   max_frames=int(config["max_source_positions"]) * 2,
                   search=SearchSettings(eot, suppress, begin))

    def apply_to(self, model: object) -> None:
        """Set these as the model's attributes (``model.eot``, ``model.search``, ...)."""
        for name, value in vars(self).items():
            setattr(model, name, value)


class WhisperCommon:
    """What both Whisper backends do alike once ``WhisperSpecials`` are applied and
    ``tokenizer``, ``bucket_seconds`` and ``pad_seconds`` are set."""

    tokenizer: Any
    sot: int
    no_timestamps: int
    multilingual: bool
    bucket_seconds: float
    pad_seconds: float

    def prompt(self, language: str = "en") -> list[int]:
        """The decoder's start: start-of-transcript, then language and task on
        multilingual models, then no-timestamps."""
        if not self.multilingual:
            return [self.sot, self.no_timestamps]
        lang = self.tokenizer.convert_tokens_to_ids(f"<|{language}|>")
        task = self.tokenizer.convert_tokens_to_ids("<|transcribe|>")
        return [self.sot, lang, task, self.no_timestamps]

    def padded_length(self, n_samples: int) -> int:
        """Samples the encoder sees: the audio rounded up to a bucket (few shapes)."""
        seconds = n_samples / ASR_RATE + self.pad_seconds
        seconds = math.ceil(seconds / self.bucket_seconds) * self.bucket_seconds
        return int(min(seconds, MAX_SECONDS) * ASR_RATE)

    def padded(self, audio: np.ndarray) -> np.ndarray:
        """Up to 30 s of ``audio``, zero-padded to its bucket."""
        n = min(len(audio), int(MAX_SECONDS * ASR_RATE))
        out = np.zeros(self.padded_length(n), dtype=np.float32)
        out[:n] = audio[:n]
        return out

    def text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()


def token_cap(n_samples: int, prompt_len: int, max_target: int) -> int:
    cap = TOKENS_MIN_CAP + int(TOKENS_PER_SECOND_CAP * n_samples / ASR_RATE)
    return max(1, min(cap, max_target - prompt_len - 1))


def _start(first: np.ndarray, no_speech_id: int, prompt: list[int], prefix: list[int]):
    """From the prompt+prefix call: last position's log-probs, P(no speech), and the
    prefix's own log-probability (so scores cover the whole hypothesis)."""
    no_speech = float(np.exp(first[0, 0, no_speech_id]))
    prefix_logprob = sum(float(first[0, len(prompt) - 1 + i, token])
                         for i, token in enumerate(prefix))
    return first[:, -1], no_speech, prefix_logprob


def _masked(logp: np.ndarray, settings: SearchSettings, at_begin: bool) -> np.ndarray:
    mask = settings.suppress_at_begin if at_begin else settings.suppress
    return np.where(mask, -np.inf, logp)


def greedy_search(step: Step, first: np.ndarray, settings: SearchSettings, no_speech_id: int,
                  prompt: list[int], prefix: list[int], cap: int) -> DecodeResult:
    logp, no_speech, total = _start(first, no_speech_id, prompt, prefix)
    tokens, finished = list(prefix), False
    for _ in range(cap):
        scores = _masked(logp[0], settings, at_begin=not tokens)
        token = int(scores.argmax())
        total += float(scores[token])
        if token == settings.eot:
            finished = True
            break
        tokens.append(token)
        logp = step([[token]], None)[:, -1]
    n_decoded = len(tokens) + (1 if finished else 0)
    return DecodeResult([DecodedSequence(tokens, total, n_decoded, finished)], no_speech)


def _top(candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best scores and their flat indices, best first (ties: lower index first)."""
    k = min(k, candidates.size)
    index = np.argpartition(-candidates, k - 1)[:k]
    order = np.lexsort((index, -candidates[index]))
    return candidates[index[order]], index[order]


def beam_search(step: Step, first: np.ndarray, settings: SearchSettings, no_speech_id: int,
                prompt: list[int], prefix: list[int], cap: int, beam_size: int, nbest: int,
                steps_after_first_end: int | None = None) -> DecodeResult:
    logp, no_speech, prefix_logprob = _start(first, no_speech_id, prompt, prefix)
    beams: list[list[int]] = [list(prefix)]
    scores = np.full(1, prefix_logprob, dtype=np.float64)
    finished: list[DecodedSequence] = []
    first_end: int | None = None
    for index in range(cap):
        # Beams grow in step, so either all or none are still at the beginning.
        masked = _masked(logp, settings, at_begin=not beams[0])
        vocab = masked.shape[-1]
        top_scores, top_index = _top((scores[:, None] + masked).ravel(), 2 * beam_size)
        next_beams, next_scores, origins = [], [], []
        for score, flat in zip(top_scores.tolist(), top_index.tolist(), strict=True):
            if score == -math.inf:
                break
            origin, token = divmod(flat, vocab)
            if token == settings.eot:
                if len(finished) < beam_size:
                    seq = beams[origin]
                    finished.append(DecodedSequence(list(seq), score, len(seq) + 1, True))
                continue
            next_beams.append(beams[origin] + [token])
            next_scores.append(score)
            origins.append(origin)
            if len(next_beams) == beam_size:
                break
        if finished and first_end is None:
            first_end = index
        # Early stop only once every live beam's log-probability is below the best
        # ended one's (it can only fall further); see WhisperModel._beam for why.
        out_of_patience = (
            steps_after_first_end is not None and first_end is not None
            and index - first_end >= steps_after_first_end
            and max(f.logprob for f in finished) >= max(next_scores, default=-math.inf))
        if (len(finished) >= beam_size or not next_beams or index == cap - 1
                or out_of_patience):
            for seq, score in zip(next_beams, next_scores, strict=True):
                if len(finished) >= beam_size:
                    break
                if index == cap - 1:
                    finished.append(DecodedSequence(seq, score, len(seq), False))
            break
        beams, scores = next_beams, np.asarray(next_scores, dtype=np.float64)
        logp = step([[b[-1]] for b in beams], origins)[:, -1]
    if not finished:  # nothing could be decoded at all (cap 0): an empty result
        finished.append(DecodedSequence(list(prefix), prefix_logprob, len(prefix), False))
    # Whisper ranks by the mean log-probability per decoded token.
    finished.sort(key=lambda s: s.mean_logprob, reverse=True)
    return DecodeResult(finished[:nbest], no_speech)
