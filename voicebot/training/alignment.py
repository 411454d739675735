"""How diagonal a Tacotron2 attention map is: the score that says alignment was learned.

``diagonal_score`` is the share of attention mass within a band around the straight
line from (first text token, first frame) to (last token, last frame), the band
covering +-10% of the text. Speech runs at a nearly even pace through a sentence, so a
learned alignment keeps most of its mass there (0.8-0.95 on Piper speech once
aligned), while an attention that has not learned to read yet is spread out: uniform
attention scores about 0.2 (the band's width), and the collapsed "attend to the first
tokens" maps of an untrained model score below that on sentences longer than a few
words. 0.5 (more than half the mass near the diagonal, 2.5x uniform) is the threshold
the base-voice test uses.
"""

from __future__ import annotations

import numpy as np

BAND = 0.1  # half-width of the band, as a share of the text length
ALIGNED = 0.5  # scores above this mean the attention follows the text


def diagonal_score(attention: np.ndarray, text_length: int, steps: int) -> float:
    """Score of one (decoder steps x text tokens) attention map, over its valid part."""
    weights = np.asarray(attention, dtype=np.float64)[:steps, :text_length]
    if weights.size == 0:
        return 0.0
    step_pos = (np.arange(steps) + 0.5) / steps
    token_pos = (np.arange(text_length) + 0.5) / text_length
    band = np.abs(step_pos[:, None] - token_pos[None, :]) <= BAND
    total = weights.sum()
    return float((weights * band).sum() / total) if total > 0 else 0.0


def batch_score(alignments, text_lengths, mel_lengths, r: int) -> float:
    """Mean ``diagonal_score`` of a training batch (tensors or arrays; the decoder's
    steps are the frames divided by its frames-per-step ``r``)."""
    maps = _numpy(alignments)
    texts, mels = _numpy(text_lengths), _numpy(mel_lengths)
    scores = [diagonal_score(maps[i], int(texts[i]), int(np.ceil(mels[i] / r)))
              for i in range(len(maps))]
    return float(np.mean(scores)) if scores else 0.0


def _numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value)
