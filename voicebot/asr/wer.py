"""Word error rate: (substitutions + deletions + insertions) / reference words."""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.text.scoring import words_for_scoring


@dataclass
class ErrorCounts:
    errors: int = 0
    ref_words: int = 0

    def add(self, other: ErrorCounts) -> None:
        self.errors += other.errors
        self.ref_words += other.ref_words

    @property
    def wer(self) -> float:
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def count_errors(reference: str, hypothesis: str) -> ErrorCounts:
    ref, hyp = words_for_scoring(reference), words_for_scoring(hypothesis)
    return ErrorCounts(edit_distance(ref, hyp), len(ref))


def wer(reference: str, hypothesis: str) -> float:
    return count_errors(reference, hypothesis).wer
