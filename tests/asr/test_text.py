"""WER and LocalAgreement: pure functions."""

from __future__ import annotations

from voicebot.asr.local_agreement import LocalAgreement, common_prefix_length
from voicebot.asr.wer import count_errors, edit_distance, wer


def test_edit_distance_and_wer():
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert edit_distance([], ["a"]) == 1
    assert wer("Ten of clubs", "10 of clubs.") == 0.0
    counts = count_errors("four of clubs", "four of close")
    assert (counts.errors, counts.ref_words) == (1, 3)
    assert count_errors("", "").wer == 0.0


def test_local_agreement_commits_only_what_two_hypotheses_share():
    # Tokens >= 100 start a word (like Whisper's leading-space tokens).
    agreement = LocalAgreement(lambda t: t >= 100)
    assert agreement.update([100, 1, 101]) == []  # nothing to agree with yet
    # Agrees on [100, 1, 101] but 101 is the last word of the first hypothesis, only
    # the complete word [100, 1] is committed.
    assert agreement.update([100, 1, 101, 2, 102]) == [100, 1]
    assert agreement.update([100, 1, 101, 2, 102, 103]) == [101, 2]
    assert agreement.committed == [100, 1, 101, 2]
    agreement.reset()
    assert agreement.committed == []
    assert common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
