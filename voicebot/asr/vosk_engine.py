"""Vosk (Kaldi) recogniser: streaming partials, n-best alternatives, word timings.

Vosk finds its own endpoints inside a long utterance; each endpoint closes a segment
whose best text is kept, and ``finish`` returns the n-best of the last segment with the
earlier segments' best text in front. Only English models give English; the Korean model
in the offline packages proves the path (tests synthesise Korean with espeak-ng).

``acoustic_score`` is Vosk's alternative "confidence": the lattice path score (acoustic
plus Vosk's own graph LM, higher is better); only differences between alternatives mean
anything. With a single alternative Vosk reports per-word confidences instead, and the
score is the sum of their logs.

A Vosk model only knows its own language, and says nothing when the speech is in another
(the Korean model turns English into Korean-looking text): ``finish`` checks the
utterance against the model's catalog language (``vosk_language``) and puts what it
found in every hypothesis's ``extras["language"]``, with a one-line message when they
do not match (also kept as ``last_language_check``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from pathlib import Path

import numpy as np

from voicebot.asr.audio_input import sanitize
from voicebot.asr.recognizer import Hypothesis, Partial, PartialCallback, WordTiming
from voicebot.asr.vosk_language import check_language
from voicebot.audio.resample import ASR_RATE
from voicebot.models import resolve

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=2)
def load_vosk_model(model_id: str = "vosk-ko"):
    from vosk import Model, SetLogLevel

    SetLogLevel(-1)  # Kaldi's logging goes to stderr and cannot be routed to ours
    path: Path = resolve(model_id)
    model = Model(str(path))
    model.voicebot_model_id = model_id  # the recogniser reads the language from it
    return model


def _words(entries: list[dict] | None) -> list[WordTiming]:
    return [WordTiming(e["word"], float(e["start"]), float(e["end"]), e.get("conf"))
            for e in entries or []]


class VoskRecognizer:
    sample_rate = ASR_RATE

    def __init__(self, model, *, nbest: int = 5, partial_interval: float = 0.25,
                 on_partial: PartialCallback | None = None, language: str | None = "auto",
                 check_language: bool = True):
        """``language``: the model's ("auto": from the catalog entry of the model that
        ``load_vosk_model`` loaded; None: unknown, no check)."""
        self.model = model
        self.model_id = getattr(model, "voicebot_model_id", "")
        if language == "auto":
            from voicebot.asr.vosk_language import model_language

            language = model_language(self.model_id) if self.model_id else None
        self.language = language
        self.check_language = check_language and language is not None
        self.last_language_check = None
        self.nbest = max(1, nbest)
        # Asking Kaldi for a partial traceback costs a little each time: with 20 ms
        # chunks, asking on every chunk made decoding ~15% slower for no visible gain.
        self.partial_interval = int(partial_interval * ASR_RATE)
        self.on_partial = on_partial
        self._recognizer = None
        self.reset()

    def _new_recognizer(self, nbest: int):
        from vosk import KaldiRecognizer

        recognizer = KaldiRecognizer(self.model, ASR_RATE)
        recognizer.SetWords(True)
        recognizer.SetPartialWords(True)
        if nbest > 1:
            recognizer.SetMaxAlternatives(nbest)
        return recognizer

    def reset(self) -> None:
        self._recognizer = self._new_recognizer(self.nbest)
        self._segments: list[Hypothesis] = []  # best of each closed segment
        self._samples = 0  # Vosk's word times already count from the first sample
        self._audio: list[np.ndarray] = []  # the utterance, for the language check
        self._partial_at = 0
        self.last_partial: Partial | None = None

    def feed(self, audio: np.ndarray) -> Partial | None:
        samples = sanitize(audio)
        if not samples.size:
            return None
        pcm = (samples * 32767.0).astype("<i2").tobytes()
        self._samples += samples.size
        if self.check_language:
            self._audio.append(samples)
        if self._recognizer.AcceptWaveform(pcm):
            # Vosk found an endpoint: keep this segment's best and carry on.
            segment = self._parse(json.loads(self._recognizer.Result()), 1)
            if segment and segment[0].text:
                self._segments.append(segment[0])
            partial_text = ""
        elif self._samples - self._partial_at >= self.partial_interval:
            self._partial_at = self._samples
            partial_text = json.loads(self._recognizer.PartialResult()).get("partial", "")
        else:
            return None
        committed = " ".join(s.text for s in self._segments)
        partial = Partial(committed=committed, tentative=partial_text,
                          audio_seconds=self._samples / ASR_RATE)
        if self.last_partial is None or partial.text != self.last_partial.text:
            self.last_partial = partial
            if self.on_partial:
                self.on_partial(partial)
            return partial
        return None

    def finish(self, nbest: int | None = None) -> list[Hypothesis]:
        nbest = max(1, nbest or self.nbest)
        try:
            return self._with_language(self._final(nbest))
        finally:
            self.reset()

    def _with_language(self, hyps: list[Hypothesis]) -> list[Hypothesis]:
        self.last_language_check = None
        if not (self.check_language and hyps and self._audio):
            return hyps

        check = check_language(np.concatenate(self._audio), self.language, self.model_id)
        self.last_language_check = check
        if check is not None:
            if check.mismatch:
                log.info("%s", check.message)
            for h in hyps:
                h.extras["language"] = check.to_dict()
        return hyps

    def _final(self, nbest: int) -> list[Hypothesis]:
        last = self._parse(json.loads(self._recognizer.FinalResult()), nbest)
        if not self._segments:
            return [h for h in last if h.text]
        head_text = " ".join(s.text for s in self._segments)
        head_score = sum(s.acoustic_score for s in self._segments)
        head_words = [w for s in self._segments for w in (s.words or [])]
        if not last or not last[0].text:
            last = [Hypothesis(text="", acoustic_score=0.0, words=[])]
        for h in last:
            h.text = " ".join(p for p in (head_text, h.text) if p)
            h.acoustic_score += head_score
            h.words = head_words + (h.words or [])
            h.n_tokens = len(h.text.split())
        return last

    @staticmethod
    def _parse(result: dict, nbest: int) -> list[Hypothesis]:
        if "alternatives" in result:
            hyps = [Hypothesis(text=alt.get("text", "").strip(),
                               acoustic_score=float(alt.get("confidence", 0.0)),
                               words=_words(alt.get("result")), engine_rank=rank)
                    for rank, alt in enumerate(result["alternatives"][:nbest])]
        else:
            words = _words(result.get("result"))
            score = sum(math.log(max(w.confidence or 1.0, 1e-6)) for w in words)
            hyps = [Hypothesis(text=result.get("text", "").strip(), acoustic_score=score,
                               words=words)]
        for h in hyps:
            h.n_tokens = len(h.text.split())
        return hyps
