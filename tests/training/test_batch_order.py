"""The trainer's batch order: reproducible, every item once per epoch, batches of similar
length (a step pads its batch to the longest item, so mixed lengths waste the step)."""

from __future__ import annotations

import random

from voicebot.training.tts_train import epoch_order


def _lengths(count: int, seed: int = 3) -> list[int]:
    # Teacher sentences run from ~0.5 s to ~7 s: 40 to 620 frames.
    rng = random.Random(seed)
    return [rng.randint(40, 620) for _ in range(count)]


def _batches(order: list[int], batch: int) -> list[list[int]]:
    return [order[k:k + batch] for k in range(0, len(order), batch)]


def _padding_efficiency(order: list[int], lengths: list[int], batch: int) -> float:
    """Real frames / padded frames over the epoch's batches."""
    real = padded = 0
    for chunk in _batches(order, batch):
        real += sum(lengths[i] for i in chunk)
        padded += max(lengths[i] for i in chunk) * len(chunk)
    return real / padded


def test_every_item_once_and_reproducible():
    lengths = _lengths(1242)
    order = epoch_order(lengths, 24, epoch=0, seed=0)
    assert sorted(order) == list(range(len(lengths)))
    assert order == epoch_order(lengths, 24, epoch=0, seed=0)  # a resumed run
    assert order != epoch_order(lengths, 24, epoch=1, seed=0)
    assert order != epoch_order(lengths, 24, epoch=0, seed=1)


def test_batches_hold_similar_lengths():
    lengths = _lengths(1242)
    shuffled = list(range(len(lengths)))
    random.Random(0).shuffle(shuffled)
    bucketed = _padding_efficiency(epoch_order(lengths, 24, 0, 0), lengths, 24)
    plain = _padding_efficiency(shuffled, lengths, 24)
    assert plain < 0.6  # uniform lengths: a random batch is padded to near the maximum
    assert bucketed > 0.9


def test_only_the_last_batch_is_short():
    lengths = _lengths(1000)  # 41 full batches of 24 and one of 16
    batches = _batches(epoch_order(lengths, 24, 0, 0), 24)
    assert [len(b) for b in batches[:-1]] == [24] * 41 and len(batches[-1]) == 16
    # Each full batch comes from one length-sorted pool: its items are neighbours in
    # length, not a random draw.
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches[:-1]]
    assert max(spread) < 100


def test_batch_order_varies_across_epochs():
    lengths = _lengths(1242)
    first = {tuple(sorted(b)) for b in _batches(epoch_order(lengths, 24, 0, 0), 24)}
    second = {tuple(sorted(b)) for b in _batches(epoch_order(lengths, 24, 1, 0), 24)}
    assert len(first & second) < len(first) // 4


def test_tiny_sets_and_batch_of_one_are_plain_shuffles():
    assert sorted(epoch_order([5, 3, 9], 24, 0, 0)) == [0, 1, 2]
    assert sorted(epoch_order(_lengths(50), 1, 0, 0)) == list(range(50))
