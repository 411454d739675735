"""Re-rank an n-best list with an n-gram LM (and optionally the chat model): a log-linear
combination of scores.

    total = acoustic_weight * acoustic + lm_weight * lm + word_bonus * n_words
            + neural_weight * neural

``acoustic`` is the engine's log-probability of the hypothesis per token, times the
list's mean token count (so it keeps the scale of a whole hypothesis), ``lm`` the n-gram
log-probability of its normalized words with sentence boundaries, ``n_words`` offsets
the LM's preference for short outputs, ``neural`` is the chat model's log-probability of
the hypothesis (end of turn included) as the user's reply to the conversation so far
(``voicebot.lm.hypothesis_scorer``), summed like ``lm``. All natural logs.

The neural term is optional: ``rescore`` gets a scorer (anything with the
``HypothesisScorer.score(texts, context)`` signature) and the conversation from its
caller; this layer never loads the chat model. It runs only when the merged list holds
more than one word sequence.

NEURAL_WEIGHT is measured by ``voicebot bench rescoring`` (Whisper tiny.en 5-best from the
app's CPU recogniser, n-gram weight 0.05): context sets where the conversation decides
(answers to the bot's question, names said before, homophones; real recordings, Piper
and hibari voices) and the plain sets with no conversation. It is the weight with the
lowest context-set WER among those that make no plain set worse (ties: the smaller).
Measured 2026-12-07 on the ONNX recogniser (``whisper_onnx``): 0.1, 0.15 and 0.2 tied on
the context sets, and 0.1 was chosen. Measured again later that day, the recogniser's
n-best lists had changed with its later commits (WER at weight 0: real-commands 0.432
-> 0.416, espeak-sentences 0.040 -> 0.073, espeak-commands 0.159 -> 0.098); at 0.1,
WER without -> with: real-context 0.087 -> 0.065, piper-context 0.120 -> 0.096,
hibari-context 0.060 -> 0.060; plain: real-sentences 0.087 -> 0.065,
real-commands 0.416 -> 0.438, hibari-sentences 0 -> 0, hibari-commands 0.061 -> 0.061,
espeak-sentences 0.073 -> 0.057, espeak-commands 0.098 -> 0.085. The rule now picks 0.05
(the same but real-context and real-sentences 0.087, real-commands 0.416): 0.1 breaks
two fragments cut from real sentences ("consider how much" -> "cider how much", "not an"
-> "not.") and fixes a whole real sentence ("an old-sposed young man" -> "an
ill-disposed young man") and the answer to "What's your name?"
(``test_the_dialogue_picks_the_likely_answer``, which 0.05 gets wrong). 0.1 stays the
default for those: users say sentences and answers, not fragments; the choice is open
(noted in the session's closing note). Fixed by it: "for tickets." -> "4 tickets." after
"How many tickets do you need?", "closest to my son" -> "closest to the sun". Its price
with the app's ONNX scorer (``lm.onnx_hypothesis_scorer``, 2 threads), for the distinct
hypotheses with the conversation cached, is a median 83 ms per n-best (p90 130 ms; the
float32 torch copy measured before it: median 338 ms on 1 thread), and nothing when the
rest of the score already decides (``NEURAL_DECIDES_NATS``), so it is on by default
(``AsrSettings.neural_weight``).

Per token, because a summed log-probability prefers whatever ended early: Whisper's
beam keeps hypotheses that stopped after a word or two ("Please" for "Please remind me
to buy milk on the way home.": finished, and its sum -2.9 beat the sentence's), and
ranking by the sum chose them (hibari sentences: WER 0.081 vs 0.000 for the engine's
own 1-best). Whisper ranks its beam by the mean log-probability too.

Hypotheses that differ only in case or punctuation ("Four of clubs." / "four of clubs")
are one hypothesis for scoring; ``rescore`` keeps the acoustically best spelling of each
(``extras["variants"]`` counts the merged ones), so the list shows real alternatives.

A hypothesis that only adds a repetition to another one in the list ("front center
center" beside "front center", "much much" beside "much") is never ranked above it,
whatever the scores: Whisper's typical failure on short clips is to loop on the last
word, and its scores do not always show it (an end-of-text right after one word can be
less likely than a second copy of it). Genuine repetitions ("five five") stay first
when the list holds nothing shorter that they merely repeat.

The weights come from ``AsrSettings``; ``TUNED_WEIGHTS`` are the values tuned with
``tune_weights`` on a dev split of the pocketsphinx recordings (every second utterance;
Whisper tiny.en 5-best; pocketsphinx LM; OOV -25 nats). On that data the LM weight is
flat from 0 to 0.1 (dev WER 0.095, other half 0.020, whole set 0.054 vs 0.065 for the
engine's 1-best); from 0.2 up without a word bonus it picks shorter, wrong outputs
(0.076 at 0.3). tiny.en's alternatives there differ mostly in spelling, and where they
differ in words the LM agrees with the acoustics ("old supposed" beats "ill disposed"),
so 0.05 is chosen: inside the flat region, yet enough to settle near-ties between
acoustically similar words (tests/asr/test_rescoring.py).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from voicebot.asr.recognizer import Hypothesis
from voicebot.asr.wer import ErrorCounts, count_errors
from voicebot.lm.ngram import NGramLM, sentence_logprob
from voicebot.text.scoring import words_for_scoring

log = logging.getLogger(__name__)

# The neural weight chosen by ``voicebot bench rescoring`` (see the module docstring).
NEURAL_WEIGHT = 0.1
# The chat model is not asked when the rest of the score already puts the best hypothesis
# further ahead than this many nats of its log-probability, times the neural weight,
# could undo. ``voicebot bench rescoring --rescoring-details`` (2026-12-07, 140 n-best
# lists with more than one word sequence, nine sets): at weight 0.05 the term changed the
# winner in 8, the rest's lead at most 0.55 (11 nats); at 0.1 in 14, at most 0.88 (8.8
# nats); at 0.2 in 17, at most 1.28 (6.4 nats). No list it changed at any of these
# weights is skipped; the bench's word error rates are the same with the skip (checked
# at 0 and 0.1). At 0.1 a lead over 2.5 held in 24% of the lists. Each skip saves the
# ~90-150 ms of the scorer between the release and the reply.
NEURAL_DECIDES_NATS = 25.0


@dataclass(frozen=True)
class Weights:
    acoustic: float = 1.0
    lm: float = 0.05
    word_bonus: float = 0.0
    neural: float = 0.0  # 0: the chat model is not asked; NEURAL_WEIGHT when it is on

    @classmethod
    def from_settings(cls, asr_settings) -> Weights:
        return cls(acoustic=asr_settings.acoustic_weight, lm=asr_settings.lm_weight,
                   word_bonus=asr_settings.word_bonus, neural=asr_settings.neural_weight)


TUNED_WEIGHTS = Weights(acoustic=1.0, lm=0.05, word_bonus=0.0)


class NeuralScorer(Protocol):
    """What ``voicebot.lm.hypothesis_scorer.HypothesisScorer`` offers rescoring."""

    def score(self, texts: Sequence[str], context: Any = None) -> Sequence[Any]:
        """One result per text with ``logprob`` and ``n_tokens``."""
        ...


@dataclass
class RescoredNBest:
    """The chosen hypothesis first, then the alternatives, all with their scores."""

    hypotheses: list[Hypothesis] = field(default_factory=list)
    weights: Weights = field(default_factory=Weights)

    @property
    def best(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    @property
    def text(self) -> str:
        return self.best.text if self.best else ""

    def to_dict(self) -> dict:
        return {"text": self.text, "weights": vars(self.weights),
                "hypotheses": [h.to_dict() for h in self.hypotheses]}


def merge_variants(hypotheses: Sequence[Hypothesis]) -> list[Hypothesis]:
    """One hypothesis per distinct word sequence: the best-scoring spelling, in order."""
    kept: dict[str, Hypothesis] = {}
    counts: dict[str, int] = {}
    for hyp in hypotheses:
        key = " ".join(words_for_scoring(hyp.text))
        counts[key] = counts.get(key, 0) + 1
        if key not in kept or hyp.acoustic_score > kept[key].acoustic_score:
            kept[key] = hyp
    merged = []
    for key, hyp in kept.items():
        extras = dict(hyp.extras, variants=counts[key]) if counts[key] > 1 else hyp.extras
        merged.append(replace(hyp, extras=extras))
    return merged


def _without_one_repeat(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every word sequence made by removing one copy of an immediately repeated span."""
    out = set()
    for size in range(1, len(words) // 2 + 1):
        for i in range(len(words) - 2 * size + 1):
            if words[i:i + size] == words[i + size:i + 2 * size]:
                out.add(words[:i + size] + words[i + 2 * size:])
    return out


def adds_only_repetition(longer: Sequence[str], shorter: Sequence[str]) -> bool:
    """True if ``longer`` is ``shorter`` with immediate repeats of some of its spans added.

    Both are word lists (``words_for_scoring``): "front center center" and "then leisure
    leisure leisure" add only repetitions to "front center" and "then leisure".
    """
    target, frontier = tuple(shorter), {tuple(longer)}
    while frontier and len(next(iter(frontier))) > len(target):
        frontier = set().union(*(_without_one_repeat(w) for w in frontier))
        if target in frontier:
            return True
    return False


def demote_repetitions(words: Sequence[Sequence[str]]) -> list[int]:
    """An order of ``words`` (given best first) where no entry comes before one that it
    only adds repetitions to; otherwise the given order is kept."""
    order = list(range(len(words)))
    changed = True
    while changed:  # each move puts a longer entry after a shorter one: at most n^2 moves
        changed = False
        for a in range(len(order)):
            later = [b for b in range(a + 1, len(order))
                     if adds_only_repetition(words[order[a]], words[order[b]])]
            if later:
                moved = order.pop(a)
                order.insert(later[-1], moved)  # just after the last one it repeats
                changed = True
                break
    return order


def total_score(acoustic: float, lm: float, n_words: int, weights: Weights,
                neural: float = 0.0) -> float:
    return (weights.acoustic * acoustic + weights.lm * lm + weights.word_bonus * n_words
            + weights.neural * neural)


def neural_scores(texts: Sequence[str], scorer: NeuralScorer | None, context: Any,
                  weights: Weights) -> list[float] | None:
    """The neural term of each text (its summed log-probability), or None when it is not
    needed (no scorer, weight 0, a single text) or the scorer fails (logged: recognition
    goes on)."""
    if scorer is None or not weights.neural or len(texts) < 2:
        return None
    try:
        return [float(s.logprob) for s in scorer.score(list(texts), context)]
    except Exception:
        log.exception("neural rescoring failed; ranking without it")
        return None


def neural_may_decide(rest: Sequence[float], weights: Weights) -> bool:
    """Whether the neural term could change the winner: the best of ``rest`` (each
    hypothesis' total without it) leads the next by no more than NEURAL_DECIDES_NATS of
    the chat model's log-probability at the neural weight."""
    if len(rest) < 2 or not weights.neural:
        return False
    first, second = sorted(rest, reverse=True)[:2]
    if first - second > abs(weights.neural) * NEURAL_DECIDES_NATS:
        log.debug("neural rescoring skipped: the best leads by %.2f", first - second)
        return False
    return True


def normalized_acoustic(hypotheses: Sequence[Hypothesis]) -> list[float]:
    """Each hypothesis' acoustic score per token, times the list's mean token count.

    Hypotheses without a token count (0) keep their score as it is.
    """
    counts = [h.n_tokens for h in hypotheses if h.n_tokens > 0]
    mean = sum(counts) / len(counts) if counts else 0.0
    return [h.acoustic_score / h.n_tokens * mean if h.n_tokens > 0 else h.acoustic_score
            for h in hypotheses]


def rescore(hypotheses: Sequence[Hypothesis], lm: NGramLM | None,
            weights: Weights | None = None, neural: NeuralScorer | None = None,
            context: Any = None) -> RescoredNBest:
    """Fill lm_score/total_score on copies and sort best first (stable for ties), then
    move any hypothesis that only adds a repetition to a later one after it.

    Without an LM (or with lm weight 0) the LM score is left out, so the ranking is the
    acoustic score plus the word bonus. ``neural`` scores the hypotheses as the user's
    reply to ``context`` (the conversation so far, messages or the bot's last reply);
    each hypothesis then carries ``extras["neural_score"]``.
    """
    weights = weights or Weights()
    scored = []
    merged = merge_variants(hypotheses)
    words = [words_for_scoring(h.text) for h in merged]
    lm_scores = [sentence_logprob(lm, w) if lm is not None else None for w in words]
    rest = [total_score(acoustic, lm_score or 0.0, len(w), weights) for acoustic, lm_score, w
            in zip(normalized_acoustic(merged), lm_scores, words, strict=True)]
    neural_terms = neural_scores([h.text for h in merged], neural, context, weights) \
        if neural is not None and neural_may_decide(rest, weights) else None
    for index, hyp in enumerate(merged):
        term = neural_terms[index] if neural_terms is not None else 0.0
        lm_score = lm_scores[index]
        total = rest[index] + weights.neural * term
        extras = dict(hyp.extras, neural_score=term) if neural_terms is not None \
            else hyp.extras
        scored.append(replace(hyp, lm_score=lm_score, total_score=total, extras=extras))
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].total_score, i))
    ranked = [scored[i] for i in order]
    ranked = [ranked[i] for i in demote_repetitions(
        [words_for_scoring(h.text) for h in ranked])]
    return RescoredNBest(ranked, weights)


@dataclass
class TuningItem:
    reference: str
    hypotheses: list[Hypothesis]  # with lm_score filled (rescore once with weight 1)


def tune_weights(items: Iterable[TuningItem], lm_weights: Sequence[float],
                 word_bonuses: Sequence[float]) -> tuple[Weights, float]:
    """Grid search for the weights with the lowest WER (ties: smallest LM weight)."""

    items = list(items)
    # Errors of every hypothesis are fixed; only the choice changes with the weights.
    errors = [[count_errors(it.reference, h.text) for h in it.hypotheses] for it in items]
    best: tuple[float, float, float, float] | None = None
    for lm_w, bonus in itertools.product(sorted(lm_weights), sorted(word_bonuses)):
        weights = Weights(1.0, lm_w, bonus)
        counts = ErrorCounts()
        for item, item_errors in zip(items, errors, strict=True):
            if not item.hypotheses:
                continue
            totals = [total_score(acoustic, h.lm_score or 0.0,
                                  len(words_for_scoring(h.text)), weights)
                      for h, acoustic in zip(item.hypotheses,
                                             normalized_acoustic(item.hypotheses),
                                             strict=True)]
            counts.add(item_errors[max(range(len(totals)), key=lambda i: (totals[i], -i))])
        key = (counts.wer, lm_w, abs(bonus), bonus)
        if best is None or key < best:
            best = key
    assert best is not None
    return Weights(1.0, best[1], best[3]), best[0]
