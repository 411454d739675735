"""Token choice, the loop guard and streaming detokenisation."""

from __future__ import annotations

import numpy as np

from voicebot.lm.decoding import (
    GenerationOptions,
    LoopGuard,
    TextStream,
    apply_repetition_penalty,
    choose_token,
)


def test_repetition_penalty_makes_used_tokens_less_likely():
    logits = np.array([2.0, -1.0, 1.9, 0.5], dtype=np.float32)
    out = apply_repetition_penalty(logits.copy(), [0, 1], 1.5)
    assert out[0] == np.float32(2.0 / 1.5) and out[1] == np.float32(-1.5)
    assert out[2] == logits[2] and out[3] == logits[3]


def test_greedy_choice_with_penalty_and_processors():
    logits = np.array([3.0, 2.9, 0.0], dtype=np.float32)
    options = GenerationOptions(repetition_penalty=1.2)
    rng = np.random.default_rng(0)
    assert choose_token(logits, [], options, rng) == 0
    assert choose_token(logits, [0], options, rng) == 1  # 3.0 / 1.2 < 2.9

    def forbid_first(_generated, values):
        values[0] = -np.inf
        return values

    forced = GenerationOptions(repetition_penalty=1.0, logits_processors=(forbid_first,))
    assert choose_token(logits, [], forced, rng) == 1
    assert logits[0] == 3.0  # the caller's array is not changed


def test_sampling_stays_inside_top_p_and_is_reproducible():
    logits = np.log(np.array([0.6, 0.3, 0.05, 0.05], dtype=np.float32))
    options = GenerationOptions(temperature=1.0, top_p=0.8, repetition_penalty=1.0, seed=3)
    picks = [choose_token(logits, [], options, np.random.default_rng(seed)) for seed in
             range(200)]
    assert set(picks) <= {0, 1} and picks.count(0) > picks.count(1)
    again = [choose_token(logits, [], options, np.random.default_rng(seed)) for seed in
             range(200)]
    assert picks == again


def test_loop_guard_catches_short_and_long_loops_only():
    guard = LoopGuard()
    assert not any(guard.push(t) for t in [5, 6, 7, 8, 9, 10, 5, 6, 7, 11])
    phrase = [21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]
    guard = LoopGuard()
    results = [guard.push(t) for t in phrase * 3]
    assert results[-1] and not any(results[:-1])
    guard = LoopGuard()
    results = [guard.push(7) for _ in range(8)]  # "......."
    assert results[-1] and not any(results[:-1])


def test_text_stream_keeps_words_and_multibyte_characters_whole(tokenizer):
    text = " Hello there, café owner 😀! Ça va?"
    ids = tokenizer.encode(text, add_special_tokens=False)
    stream = TextStream(tokenizer)
    pieces = [stream.push(t) for t in ids]
    assert "".join(pieces) == tokenizer.decode(ids)
    assert all("\ufffd" not in piece for piece in pieces)
