"""Where the student's attention belongs, from the teacher's phoneme durations.

Coqui's guided-attention loss only pushes the attention towards the straight diagonal
of the (decoder step, token) grid, with a wide tolerance (sigma 0.4 of the whole
sentence). A Piper teacher says exactly which phoneme each frame of its audio belongs to
(``voicebot.tts.piper_durations``), so the base voice is told the real path instead: a
token position per mel frame, a centre per decoder step, and a loss that weighs each
attention cell by how far it lies from that centre. Items without durations (the
user's takes) keep Coqui's diagonal prior.

Piper's phoneme string and the student's tokens come from the same espeak-ng phonemes
but are made by two tokenizers, so they are matched character by character (difflib):
matched stretches map one to one, others spread over what they replaced.
"""

from __future__ import annotations

import difflib

import numpy as np

# The attention's tolerance around the teacher's path, in tokens: a decoder step of r=5
# frames (58 ms) often straddles two phonemes, and the location-sensitive attention
# needs room to move smoothly between them.
SIGMA_TOKENS = 1.5


def frame_positions(phonemes: str, frames: np.ndarray, tokens: str) -> np.ndarray:
    """(sum(frames),) float32: the token position (0 = the first token's centre) each
    frame of the teacher's audio belongs to.

    ``phonemes``/``frames``: the teacher's characters and their frame counts;
    ``tokens``: the student's token characters, one per token id.
    """
    if not tokens:
        raise ValueError("no tokens")
    frames = np.asarray(frames, np.int64)
    # Each teacher character gets a range [lo, hi) of token positions.
    lo = np.zeros(len(phonemes))
    hi = np.zeros(len(phonemes))
    matcher = difflib.SequenceMatcher(None, phonemes, tokens, autojunk=False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if i2 == i1:
            continue  # tokens the teacher did not say: the path steps over them
        edges = np.linspace(j1, j2, i2 - i1 + 1)
        lo[i1:i2], hi[i1:i2] = edges[:-1], edges[1:]
    positions = np.empty(int(frames.sum()), np.float32)
    start = 0
    for k, count in enumerate(frames):
        if count <= 0:
            continue
        within = (np.arange(count) + 0.5) / count
        positions[start:start + count] = lo[k] + (hi[k] - lo[k]) * within - 0.5
        start += count
    return np.clip(positions, 0.0, len(tokens) - 1.0)


def step_centres(positions: np.ndarray, r: int, steps: int) -> np.ndarray:
    """(steps,) the mean token position of each decoder step's r frames; past the last
    frame the last position is kept (padding steps are masked out of the loss)."""
    padded = np.full(steps * r, positions[-1] if positions.size else 0.0, np.float32)
    n = min(positions.size, padded.size)
    padded[:n] = positions[:n]
    return padded.reshape(steps, r).mean(axis=1)


def guided_attention_loss(base_loss):
    """A loss module with Coqui's ``GuidedAttentionLoss`` interface (att_ws, ilens,
    olens) that uses ``centres`` (batch, steps; NaN where unknown), set before each
    step, for the items that have them and ``base_loss`` (Coqui's diagonal) for the
    others."""
    import torch

    class DurationGuidedAttentionLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base_loss
            self.centres: torch.Tensor | None = None
            self.sigma = SIGMA_TOKENS

        def forward(self, att_ws, ilens, olens):
            centres = self.centres
            if centres is None or not torch.isfinite(centres).any():
                return self.base(att_ws, ilens, olens)
            _, steps, tokens = att_ws.shape
            centres = centres[:, :steps].to(att_ws.device)
            known = torch.isfinite(centres[:, 0])
            diagonal = self.base._make_ga_masks(ilens, olens).to(att_ws.device)
            grid = torch.arange(tokens, device=att_ws.device, dtype=att_ws.dtype)
            offset = grid[None, None, :] - torch.nan_to_num(centres)[:, :, None]
            path = 1.0 - torch.exp(-offset.pow(2) / (2 * self.sigma ** 2))
            masks = torch.where(known[:, None, None], path, diagonal)
            valid = self.base._make_masks(ilens, olens).to(att_ws.device)
            return torch.mean((masks * att_ws).masked_select(valid))

    return DurationGuidedAttentionLoss()


def path_error(alignments, centres, mel_lengths, r: int) -> float | None:
    """Mean distance, in tokens, between where the attention looks (its expected token)
    and the teacher's path, over the real decoder steps of the items with a path; None
    when no item has one."""
    import torch

    with torch.no_grad():
        alignments = alignments.detach().float()
        steps = alignments.shape[1]
        centres = centres[:, :steps].to(alignments.device)
        grid = torch.arange(alignments.shape[2], device=alignments.device,
                            dtype=alignments.dtype)
        looked = alignments @ grid
        real = torch.arange(steps, device=alignments.device)[None, :] < torch.ceil(
            mel_lengths.to(alignments.device)[:, None] / r)
        known = torch.isfinite(centres) & real
        if not known.any():
            return None
        return float((looked - torch.nan_to_num(centres)).abs()[known].mean())
