"""Build a small ARPA n-gram LM from the user's own text, and mix it into a big one.

Names, places and phrases the user says often (from conversation history, contacts,
a word list) are rare or unknown to the general LM. ``build_arpa`` estimates an
interpolated absolute-discounting model (discount 0.75, the usual choice for small
counts) and writes it in back-off ARPA form, so ``ArpaModel`` (or any ARPA tool) reads
it. ``InterpolatedLM`` mixes it with the general LM word by word:

    P(w | h) = (1 - weight) * P_general(w | h) + weight * P_user(w | h)

so the user's words stop being out-of-vocabulary without making the general LM worse
at everything else.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from voicebot.atomic_write import write_text_atomic
from voicebot.lm.ngram import BOS, EOS, UNK, NGramLM
from voicebot.text.scoring import words_for_scoring

DISCOUNT = 0.75
# Probability mass the unigram level keeps for words never seen in the user's text.
UNSEEN_MASS = 0.05


def _sentences(texts: Iterable[str]) -> list[list[str]]:
    return [words for text in texts if (words := words_for_scoring(text))]


def build_arpa(texts: Iterable[str], order: int = 3) -> str:
    """ARPA text of an n-gram model of the given sentences (normalized for scoring)."""
    if order < 1:
        raise ValueError("order must be at least 1")
    sentences = _sentences(texts)
    if not sentences:
        raise ValueError("no words to build a language model from")
    counts: list[Counter] = [Counter() for _ in range(order + 1)]
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i:i + n])
                if gram != (BOS,):
                    counts[n][gram] += 1
    # Unigrams: relative frequency, with UNSEEN_MASS shared by <unk>.
    total = sum(counts[1].values())
    prob: dict[tuple[str, ...], float] = {
        g: (1 - UNSEEN_MASS) * c / total for g, c in counts[1].items()}
    prob[(UNK,)] = UNSEEN_MASS
    prob[(BOS,)] = 0.0  # never predicted; present so it can carry a back-off weight
    for n in range(2, order + 1):
        context_total: Counter = Counter()
        followers: dict[tuple[str, ...], int] = defaultdict(int)
        for gram, c in counts[n].items():
            context_total[gram[:-1]] += c
            followers[gram[:-1]] += 1
        for gram, c in counts[n].items():
            context = gram[:-1]
            gamma = DISCOUNT * followers[context] / context_total[context]
            lower = _lookup(prob, gram[1:])
            prob[gram] = max(c - DISCOUNT, 0) / context_total[context] + gamma * lower
    backoff = _backoff_weights(prob, order)
    return _format(prob, backoff, order)


def _lookup(prob: dict[tuple[str, ...], float], gram: tuple[str, ...]) -> float:
    """P(gram[-1] | gram[:-1]) by backing off to shorter contexts (for estimation)."""
    while gram not in prob and len(gram) > 1:
        gram = gram[1:]
    return prob.get(gram, prob[(UNK,)])


def _backoff_weights(prob: dict[tuple[str, ...], float], order: int) -> dict:
    """alpha(h) so that the back-off model's probabilities after h sum to one."""
    seen_after: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
    for gram in prob:
        if len(gram) > 1:
            seen_after[gram[:-1]].append(gram)
    backoff = {}
    for context, grams in seen_after.items():
        explicit = sum(prob[g] for g in grams)
        lower = sum(_lookup(prob, g[1:]) for g in grams)
        left, lower_left = max(1.0 - explicit, 1e-12), max(1.0 - lower, 1e-12)
        backoff[context] = left / lower_left
    return backoff


def _format(prob: dict, backoff: dict, order: int) -> str:
    lines = ["", "\\data\\"]
    by_order = [[g for g in prob if len(g) == n] for n in range(1, order + 1)]
    lines += [f"ngram {n}={len(grams)}" for n, grams in enumerate(by_order, 1)]
    for n, grams in enumerate(by_order, 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(grams):
            p = prob[gram]
            logp = math.log10(p) if p > 0 else -99.0
            line = f"{logp:.6f}\t{' '.join(gram)}"
            if n < order and gram in backoff:
                line += f"\t{math.log10(backoff[gram]):.6f}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


def write_arpa(texts: Iterable[str], path: str | Path, order: int = 3) -> Path:
    return write_text_atomic(path, build_arpa(texts, order))


class InterpolatedLM:
    """Word-level linear mix of a general LM and a (small) user LM."""

    def __init__(self, general: NGramLM, user: NGramLM, weight: float = 0.3):
        if not 0.0 <= weight <= 1.0:
            raise ValueError("weight must be between 0 and 1")
        self.general, self.user, self.weight = general, user, weight
        self.order = max(general.order, user.order)

    def contains(self, word: str) -> bool:
        return self.general.contains(word) or self.user.contains(word)

    def word_logprob(self, word: str, history: Sequence[str]) -> float:
        g = self.general.word_logprob(word, history[-(self.general.order - 1):]
                                      if self.general.order > 1 else [])
        u = self.user.word_logprob(word, history[-(self.user.order - 1):]
                                   if self.user.order > 1 else [])
        if word != EOS and not self.user.contains(word):
            # The user LM's <unk> mass is spread over the words it never saw in
            # proportion to the general LM, so it boosts the user's words only.
            u += g
        a, b = math.log1p(-self.weight) if self.weight < 1 else -math.inf, \
            math.log(self.weight) if self.weight > 0 else -math.inf
        return _logaddexp(a + g, b + u)


def _logaddexp(x: float, y: float) -> float:
    if x == -math.inf:
        return y
    if y == -math.inf:
        return x
    top = max(x, y)
    return top + math.log(math.exp(x - top) + math.exp(y - top))
