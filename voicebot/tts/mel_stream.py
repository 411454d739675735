"""Turn a growing decoder mel spectrogram into audio, window by window.

Tacotron2's decoder produces frames one step at a time; the postnet and the vocoder are
convolutional, so any stretch of their output depends only on a few frames around it.
``MelToAudio`` takes frames as they come and, as soon as enough lie ahead of the next
stretch, runs postnet and vocoder on that stretch plus context on both sides and keeps
only the middle. Stretches start short (first audio early) and double up to a limit, so
each is ready before the audio already handed out has played. With enough context the
joined audio equals what one call over the whole utterance gives (Coqui's way), yet the
first audio leaves after a few decoder steps.

Frame indices: ``decoder`` frames D (what the decoder emits), ``mel`` M = postnet(D) (same
length), and ``vocoder input`` V = M with ``edge_pad`` copies of its first and last frame
added at the ends, as Coqui's HiFi-GAN ``inference`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]  # (channels, frames) -> same / samples

# Mel frames of context on each side of a vocoder window. HiFi-GAN V1 (and V2: same
# kernels and dilations, fewer channels) sees about 12 frames each way. Measured on real
# speech (copy-synthesis of a 3 s LibriVox clip through the V1 generator, windows of
# 16-256 frames), the windowed audio's max abs difference from one whole call: 0.22 at 4
# frames, 0.055 at 8, 0.015 at 10 (the old default: audible clicks at window joins), and
# 2.0e-5 at 12, 16 and 20 (float rounding). Each frame of context costs ~1% more work at
# the 256-frame windows.
VOCODER_CONTEXT = 12


class MelToAudio:
    """Contexts: the postnet's five 5-tap convolutions see 10 frames each way; HiFi-GAN
    needs ``VOCODER_CONTEXT`` (12) frames each way to match one whole call."""

    def __init__(self, postnet: Transform, vocoder: Transform, *, hop: int,
                 renormalize: Transform | None = None, edge_pad: int = 5,
                 postnet_context: int = 10, vocoder_context: int = VOCODER_CONTEXT,
                 first_frames: int = 16, growth: int = 2, max_frames: int = 256) -> None:
        self.postnet, self.vocoder, self.hop = postnet, vocoder, hop
        self.renormalize = renormalize
        self.edge_pad = edge_pad
        self.postnet_context = postnet_context
        self.vocoder_context = vocoder_context
        self.first_frames = first_frames
        self.growth = growth
        self.max_frames = max_frames
        self._size = first_frames
        self._decoder: list[np.ndarray] = []  # (channels, k) blocks as they arrived
        self._decoder_cat: np.ndarray | None = None
        self._emitted = 0  # vocoder-input frames already turned into audio

    @property
    def decoder_frames(self) -> int:
        return sum(block.shape[1] for block in self._decoder)

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Add decoder frames (channels, k); yields audio windows that became ready."""
        self._decoder.append(np.asarray(frames, dtype=np.float32))
        self._decoder_cat = None
        while True:
            stop = self._emitted + self._window()
            # Frames of D needed so that V[:stop + context] is final (see module doc).
            needed = stop + self.vocoder_context - self.edge_pad + self.postnet_context
            if self.decoder_frames < needed:
                return
            yield self._render(self._emitted, stop, total=None)

    def finish(self) -> Iterator[np.ndarray]:
        """The decoder stopped: render everything that is left (the last window last)."""
        total = self.decoder_frames
        if total == 0:
            return
        end = total + 2 * self.edge_pad
        while self._emitted < end:
            stop = min(end, self._emitted + self._window())
            yield self._render(self._emitted, stop, total=total)

    @property
    def done(self) -> bool:
        """True once ``finish`` has rendered the last window."""
        return self._emitted >= self.decoder_frames + 2 * self.edge_pad > 2 * self.edge_pad

    def _window(self) -> int:
        return self._size

    def _all_decoder(self) -> np.ndarray:
        if self._decoder_cat is None:
            self._decoder_cat = np.concatenate(self._decoder, axis=1)
            self._decoder = [self._decoder_cat]
        return self._decoder_cat

    def _render(self, start: int, stop: int, total: int | None) -> np.ndarray:
        decoder = self._all_decoder()
        known = decoder.shape[1]
        v_lo = max(0, start - self.vocoder_context)
        v_hi = stop + self.vocoder_context
        if total is not None:
            v_hi = min(v_hi, total + 2 * self.edge_pad)
        # Which mel frames feed V[v_lo:v_hi] (edge copies point at the first/last frame).
        mel_index = np.arange(v_lo, v_hi) - self.edge_pad
        mel_index = np.clip(mel_index, 0, (total or known) - 1)
        m_lo, m_hi = int(mel_index.min()), int(mel_index.max()) + 1
        d_lo = max(0, m_lo - self.postnet_context)
        d_hi = min(known, m_hi + self.postnet_context)
        mel = self.postnet(decoder[:, d_lo:d_hi])
        if self.renormalize is not None:
            mel = self.renormalize(mel)
        vocoder_input = np.ascontiguousarray(mel[:, mel_index - d_lo])
        audio = self.vocoder(vocoder_input)
        self._emitted = stop
        self._size = min(self.max_frames, self._size * self.growth)
        return audio[(start - v_lo) * self.hop:(stop - v_lo) * self.hop]
