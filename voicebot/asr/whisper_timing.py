"""Word timings for Whisper from its cross-attention (the approach of OpenAI's Whisper).

Some cross-attention heads (the checkpoint's ``alignment_heads``) follow the audio
monotonically. Running the decoder once over the final tokens and reading those heads'
attention gives a token x audio-frame matrix; after normalising each head and a median
filter, dynamic time warping finds the monotonic path through it, and the frame where
each word's first token starts is the word's start (20 ms per encoder frame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voicebot.asr.recognizer import WordTiming

SECONDS_PER_FRAME = 0.02  # encoder positions: 2 mel frames of 10 ms
MEDIAN_WIDTH = 7


def _median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a sliding window along the last axis (edges reflected)."""
    if x.shape[-1] < width:
        return x
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.median(windows, axis=-1)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotonic alignment of rows (tokens) to columns (frames) minimising the cost."""
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    step = np.zeros((n + 1, m + 1), dtype=np.int8)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            options = (total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
            best = int(np.argmin(options))
            total[i, j] = cost[i - 1, j - 1] + options[best]
            step[i, j] = best
    i, j = n, m
    rows, cols = [], []
    while i > 0 and j > 0:
        rows.append(i - 1)
        cols.append(j - 1)
        move = step[i, j]
        if move == 0:
            i, j = i - 1, j - 1
        elif move == 1:
            i -= 1
        else:
            j -= 1
    return np.array(rows[::-1]), np.array(cols[::-1])


def alignment_weights(model, encoded, tokens: list[int], prompt: list[int]) -> np.ndarray:
    """Alignment heads' attention (heads x tokens x speech frames) for prompt+tokens+eot."""
    if hasattr(model, "alignment_weights"):  # the ONNX model returns them from its graph
        return model.alignment_weights(encoded, tokens, prompt)
    import torch

    decoder = model.model.model.decoder
    captured: dict[int, Any] = {}
    hooks = []
    for index, layer in enumerate(decoder.layers):
        def keep(module, args, kwargs, index=index):
            captured[index] = args[0] if args else kwargs["hidden_states"]
        hooks.append(layer.encoder_attn.register_forward_pre_hook(keep, with_kwargs=True))
    try:
        with torch.inference_mode():
            cache = model._cache_for(encoded)
            ids = torch.tensor([prompt + tokens + [model.eot]], device=model.device)
            decoder(input_ids=ids, encoder_hidden_states=encoded.speech,
                    past_key_values=cache, use_cache=True)
            frames = encoded.speech.shape[1]
            heads = model.model.generation_config.alignment_heads or []
            n_heads = model.model.config.decoder_attention_heads
            rows = []
            for layer_index, head in heads:
                attn = decoder.layers[layer_index].encoder_attn
                h = captured[layer_index]
                q = (attn.q_proj(h) * attn.scaling).view(1, h.shape[1], n_heads, -1)
                k = encoded.cross_kv[layer_index][0][0, head]  # 1500 x head_dim
                scores = q[0, :, head].float() @ k.float().T
                rows.append(torch.softmax(scores, dim=-1)[:, :frames])
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(rows).cpu().numpy() if rows else np.zeros((0, 0, 0))


def word_timings(model, encoded, tokens: list[int], prompt: list[int]) -> list[WordTiming]:
    """Start/end seconds of each word of ``tokens`` (text tokens only)."""
    if not tokens:
        return []
    weights = alignment_weights(model, encoded, tokens, prompt)
    if weights.size == 0:
        return []
    # Rows for the text tokens and end-of-text (the prompt's rows carry no timing).
    weights = weights[:, len(prompt) - 1: len(prompt) + len(tokens)]
    std = weights.std(axis=-1, keepdims=True) + 1e-10
    weights = (weights - weights.mean(axis=-1, keepdims=True)) / std
    matrix = _median_filter(weights, MEDIAN_WIDTH).mean(axis=0)
    rows, cols = dtw_path(-matrix)
    # First frame of each row along the path: when each token starts.
    starts = np.array([cols[np.argmax(rows == r)] if (rows == r).any() else cols[-1]
                       for r in range(matrix.shape[0])]) * SECONDS_PER_FRAME
    words: list[WordTiming] = []
    pieces = [model.tokenizer.decode([t]) for t in tokens]
    for index, piece in enumerate(pieces):
        if piece.startswith(" ") or not words:
            words.append(WordTiming(piece.strip(), float(starts[index]), 0.0))
        else:
            words[-1].word += piece
    # Each word ends where the next begins (the last where end-of-text begins).
    word_starts = [w.start for w in words] + [float(starts[len(tokens)])]
    for word, end in zip(words, word_starts[1:], strict=True):
        word.end = max(end, word.start)
    words = [w for w in words if w.word]
    _clip_long_words(words)
    return words


def _clip_long_words(words: list[WordTiming]) -> None:
    """The path starts at frame 0 and ends where end-of-text is read, so the first and
    last words absorb leading and trailing silence. Like Whisper's own timing code, cap
    them at twice the median word length (at most 1.4 s)."""
    durations = [w.end - w.start for w in words if w.end > w.start]
    if not durations:
        return
    longest = 2 * min(float(np.median(durations)), 0.7)
    first, last = words[0], words[-1]
    if first.end - first.start > longest:
        first.start = first.end - longest
    if last.end - last.start > longest:
        last.end = last.start + longest
