"""N-gram language models for rescoring recogniser hypotheses.

Two formats:
- the pocketsphinx binary trigram LM (``en-us.lm.bin``, 72k words), read with
  pocketsphinx's ``NGramModel``; its log-probabilities are integers in LogMath base
  1.0001, converted here to natural logs;
- ARPA text files, read by ``ArpaModel`` (plain Python: user-built LMs are small).

Both score a word sequence as a sentence: ``<s>`` before the first word, ``</s>`` after
the last, every word conditioned on up to order-1 previous words (backing off as the
model says). Words the model does not know cost ``oov_logprob`` each (the ARPA model's
own ``<unk>`` probability when it has one). Words are expected already normalized
(``voicebot.text.scoring.words_for_scoring``): lower case, numbers spelled out.
All scores are natural logarithms.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from voicebot.models import resolve

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
# A word the LM never saw (in Whisper's output usually a misheard fragment like "sposed")
# must cost more than the rare known words it competes with: -25 nats (log10 -10.9) was
# the value that let rescoring fix such errors on the dev split (-16 did not).
DEFAULT_OOV_LOGPROB = -25.0


@runtime_checkable
class NGramLM(Protocol):
    order: int

    def contains(self, word: str) -> bool: ...

    def word_logprob(self, word: str, history: Sequence[str]) -> float:
        """ln P(word | history), history oldest first (may include <s>)."""
        ...


def sentence_logprob(lm: NGramLM, words: Sequence[str], bos: bool = True,
                     eos: bool = True) -> float:
    """ln P(<s> words </s>) under the model."""
    history: list[str] = [BOS] if bos else []
    total = 0.0
    for word in [*words, EOS] if eos else words:
        total += lm.word_logprob(word, history[-(lm.order - 1):] if lm.order > 1 else [])
        history.append(word)
    return total


def per_word_details(lm: NGramLM, words: Sequence[str]) -> list[tuple[str, float, bool]]:
    """(word, ln P, known) for each word and </s>: what the UI shows on hover."""
    history = [BOS]
    details = []
    for word in [*words, EOS]:
        details.append((word, lm.word_logprob(word, history[-(lm.order - 1):]),
                        word == EOS or lm.contains(word)))
        history.append(word)
    return details


class PocketsphinxModel:
    """pocketsphinx's binary (or ARPA/DMP) LM through its NGramModel API."""

    # pocketsphinx returns probabilities in LogMath base 1.0001 when no LogMath is given.
    _LOG_BASE = 1.0001

    def __init__(self, path: str | Path, oov_logprob: float = DEFAULT_OOV_LOGPROB):
        from pocketsphinx import NGramModel

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no n-gram LM at {self.path}")
        self._model = NGramModel.readfile(str(self.path))
        self.order = int(self._model.size())
        self.oov_logprob = oov_logprob
        self._scale = math.log(self._LOG_BASE)
        self._zero = self._model.prob(["qqzxqqzxqq"])  # LogMath's "zero" (unknown word)
        self._cache: dict[tuple[str, ...], float] = {}

    def contains(self, word: str) -> bool:
        return self._model.prob([word]) > self._zero

    def word_logprob(self, word: str, history: Sequence[str]) -> float:
        key = (word, *reversed(history))  # pocketsphinx wants the newest history first
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if word != EOS and not self.contains(word):
            value = self.oov_logprob
        else:
            # The context ends at an unknown word: nothing before it is adjacent.
            known: list[str] = []
            for w in key[1:self.order]:
                if w != BOS and not self.contains(w):
                    break
                known.append(w)
            value = self._model.prob([word, *known]) * self._scale
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = value
        return value


class ArpaFormatError(ValueError):
    pass


class ArpaModel:
    """A back-off n-gram model read from an ARPA file (optionally .gz)."""

    def __init__(self, path: str | Path, oov_logprob: float = DEFAULT_OOV_LOGPROB):
        self.path = Path(path)
        self.oov_logprob = oov_logprob
        # n-gram tuple -> (log10 prob, log10 backoff)
        self.ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
        self.order = 0
        opener = gzip.open if self.path.suffix == ".gz" else open
        with opener(self.path, "rt", encoding="utf-8") as fh:
            self._parse(fh)
        unk = self.ngrams.get((UNK,))
        if unk is not None:
            self.oov_logprob = unk[0] * LN10

    def _parse(self, lines) -> None:
        section = None
        expected: dict[int, int] = {}
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = "data"
                continue
            if line == "\\end\\":
                break
            header = re.fullmatch(r"\\(\d+)-grams:", line)
            if header:
                section = int(header.group(1))
                self.order = max(self.order, section)
                continue
            if section == "data":
                match = re.fullmatch(r"ngram (\d+)\s*=\s*(\d+)", line)
                if match:
                    expected[int(match.group(1))] = int(match.group(2))
                continue
            if isinstance(section, int):
                parts = line.split()
                if len(parts) < section + 1:
                    raise ArpaFormatError(f"{self.path}:{number}: short {section}-gram line")
                prob = float(parts[0])
                words = tuple(parts[1:section + 1])
                backoff = float(parts[section + 1]) if len(parts) > section + 1 else 0.0
                self.ngrams[words] = (prob, backoff)
        if not expected or section is None:
            raise ArpaFormatError(f"{self.path}: not an ARPA file (no \\data\\ section)")
        for n, count in expected.items():
            found = sum(1 for k in self.ngrams if len(k) == n)
            if found != count:
                raise ArpaFormatError(f"{self.path}: header says {count} {n}-grams, "
                                      f"file has {found}")

    def contains(self, word: str) -> bool:
        return (word,) in self.ngrams

    def word_logprob(self, word: str, history: Sequence[str]) -> float:
        if word not in (EOS,) and not self.contains(word):
            return self.oov_logprob
        context = [w if (w,) in self.ngrams else UNK for w in history][-(self.order - 1):] \
            if self.order > 1 else []
        backoff = 0.0
        while True:
            entry = self.ngrams.get((*context, word))
            if entry is not None:
                return (entry[0] + backoff) * LN10
            if not context:
                return self.oov_logprob
            hist = self.ngrams.get(tuple(context))
            backoff += hist[1] if hist else 0.0
            context = context[1:]


def load_ngram(path: str | Path, oov_logprob: float = DEFAULT_OOV_LOGPROB) -> NGramLM:
    """An LM from a file or a folder holding one (ARPA text, or pocketsphinx binary)."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.lm.bin")) + sorted(path.glob("*.arpa")) \
            + sorted(path.glob("*.arpa.gz")) + sorted(path.glob("*.lm"))
        if not candidates:
            raise FileNotFoundError(f"no n-gram LM file (*.lm.bin, *.arpa, *.lm) in {path}")
        # pocketsphinx's folder also holds a small phone LM: the word LM is the largest.
        path = max(candidates, key=lambda p: p.stat().st_size)
    if path.name.endswith((".arpa", ".arpa.gz")) or _looks_like_arpa(path):
        return ArpaModel(path, oov_logprob)
    return PocketsphinxModel(path, oov_logprob)


def _looks_like_arpa(path: Path) -> bool:
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return "\\data\\" in head


def load_catalog_ngram(model_id: str = "pocketsphinx-en-us-lm") -> NGramLM:
    """The LM a settings id names, through the model store."""

    return load_ngram(resolve(model_id))
