"""LocalAgreement-2: commit the words two successive re-decodes agree on.

While the user speaks, the growing buffer is re-decoded every so often. A prefix that two
consecutive hypotheses share (and that extends what is already committed) is unlikely to
change with more audio, so it is committed: shown as stable text and forced as a decoder
prefix from then on, which also makes later decodes cheaper. The last word of a
hypothesis is never committed, as it may still be cut off mid-word.

Works on token lists so that the committed prefix can be fed back to the decoder
exactly; ``is_word_start`` tells where words begin (Whisper's BPE marks them with a
leading space).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LocalAgreement:
    def __init__(self, is_word_start: Callable[[int], bool]):
        self.is_word_start = is_word_start
        self.committed: list[int] = []
        self.previous: list[int] | None = None

    def reset(self) -> None:
        self.committed = []
        self.previous = None

    def _word_starts_at(self, tokens: list[int], index: int) -> bool:
        return index < len(tokens) and self.is_word_start(tokens[index])

    def update(self, hypothesis: list[int]) -> list[int]:
        """Take a new full hypothesis (committed prefix included); return newly committed."""
        if hypothesis[: len(self.committed)] != self.committed:
            # The decoder was forced to the committed prefix, so this only happens if a
            # caller passes an unrelated hypothesis; start agreeing afresh from here.
            self.previous = hypothesis
            return []
        newly: list[int] = []
        if self.previous is not None:
            agreed = common_prefix_length(self.previous, hypothesis)
            # Cut back to a word boundary that is followed by more agreed text, so the
            # last (possibly partial) word stays tentative.
            end = agreed
            while end > len(self.committed) and not (
                    self._word_starts_at(hypothesis, end)
                    and self._word_starts_at(self.previous, end)):
                end -= 1
            if end > len(self.committed):
                newly = hypothesis[len(self.committed): end]
                self.committed = hypothesis[:end]
        self.previous = hypothesis
        return newly
