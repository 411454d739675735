"""Streaming spectral features: STFT power and log-mel, computed as audio arrives.

Samples can be pushed in pieces of any size; the frames produced are exactly those a
one-shot STFT of the whole signal would give (frame ``k`` covers samples
``k*hop .. k*hop + win``, no centre padding), so live plots and offline analysis agree.

All frames available in a push are computed at once (one windowed matrix, one batched
FFT, one matrix product with the filterbank) into buffers allocated up front, sized for
``max_frames_per_push`` frames; a larger push is processed in slices of that size, so the
steady state allocates nothing per frame.
"""

from __future__ import annotations

import numpy as np

from voicebot.audio.resample import ASR_RATE

WIN_MS = 25.0
HOP_MS = 10.0
N_MELS = 80
# Floor of the power spectrum before the log: -100 dB, well below 16-bit quantisation.
POWER_FLOOR = 1e-10


class StreamingStft:
    """Hann-windowed power spectra (``|rfft|**2``) of a stream, frame by frame."""

    def __init__(self, sample_rate: int = ASR_RATE, win_ms: float = WIN_MS,
                 hop_ms: float = HOP_MS, n_fft: int | None = None,
                 max_frames_per_push: int = 64) -> None:
        self.sample_rate = sample_rate
        self.win = round(sample_rate * win_ms / 1000)
        self.hop = round(sample_rate * hop_ms / 1000)
        self.n_fft = n_fft or 1 << (self.win - 1).bit_length()  # next power of two
        if self.n_fft < self.win:
            raise ValueError(f"n_fft {self.n_fft} is shorter than the window {self.win}")
        self.n_bins = self.n_fft // 2 + 1
        self.max_frames = max_frames_per_push
        # Scaled so a full-scale sine gives power ~1 in its bin (0 dB).
        window = np.hanning(self.win + 1)[:-1]  # periodic Hann
        self.window = (window * (2.0 / window.sum())).astype(np.float32)
        # Pending samples: a frame's worth of history plus room for one batch of hops.
        self._pending = np.zeros(self.win + self.hop * self.max_frames, np.float32)
        self._pending_len = 0
        # Frame k of the pending samples starts at k * hop: one strided view, made once.
        item = self._pending.itemsize
        self._frame_view = np.lib.stride_tricks.as_strided(
            self._pending, shape=(self.max_frames, self.win), strides=(self.hop * item, item),
            writeable=False)
        self._frames = np.zeros((self.max_frames, self.n_fft), np.float32)
        self._spectrum = np.zeros((self.max_frames, self.n_bins), np.complex64)
        self._power = np.zeros((self.max_frames, self.n_bins), np.float32)
        self.frames_out = 0

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Feed samples; returns power frames (``k x n_bins`` views, valid until the next
        push) for every complete frame, in order. Usually a list of one array."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        results: list[np.ndarray] = []
        pos = 0
        while True:
            take = min(len(self._pending) - self._pending_len, len(samples) - pos)
            self._pending[self._pending_len:self._pending_len + take] = samples[pos:pos + take]
            self._pending_len += take
            pos += take
            power = self._compute_ready()
            if power is None:
                return results
            more = pos < len(samples) or self._pending_len >= self.win
            # The view is overwritten by the next batch; copy only when one will follow
            # (a push longer than max_frames_per_push hops).
            results.append(power.copy() if more else power)
            if not more:
                return results

    def _compute_ready(self) -> np.ndarray | None:
        if self._pending_len < self.win:
            return None
        count = min(self.max_frames, 1 + (self._pending_len - self.win) // self.hop)
        frames = self._frame_view[:count]
        work = self._frames[:count]
        np.multiply(frames, self.window, out=work[:, :self.win])  # tail stays zero-padded
        spectrum = self._spectrum[:count]
        np.fft.rfft(work, n=self.n_fft, axis=1, out=spectrum)
        power = self._power[:count]
        np.abs(spectrum, out=power)
        np.square(power, out=power)
        consumed = count * self.hop
        remaining = self._pending_len - consumed
        self._pending[:remaining] = self._pending[consumed:self._pending_len]
        self._pending_len = remaining
        self.frames_out += count
        return power


class StreamingLogMel:
    """80-band log-mel spectrogram in dB (``10*log10``), computed incrementally."""

    def __init__(self, sample_rate: int = ASR_RATE, n_mels: int = N_MELS,
                 win_ms: float = WIN_MS, hop_ms: float = HOP_MS, fmin: float = 0.0,
                 fmax: float | None = None, max_frames_per_push: int = 64) -> None:
        import librosa  # only the filterbank comes from librosa; imported when needed

        self.stft = StreamingStft(sample_rate, win_ms, hop_ms,
                                  max_frames_per_push=max_frames_per_push)
        self.n_mels = n_mels
        self.fmax = fmax or sample_rate / 2
        # Slaney-normalized triangles would scale the bands by their width; a display and
        # an ASR front end want a tone to read the same in every band, so norm=None.
        self.filterbank = librosa.filters.mel(sr=sample_rate, n_fft=self.stft.n_fft,
                                              n_mels=n_mels, fmin=fmin, fmax=self.fmax,
                                              norm=None).astype(np.float32)
        self._filterbank_t = np.ascontiguousarray(self.filterbank.T)
        self._mel = np.zeros((max_frames_per_push, n_mels), np.float32)
        self.band_centers = librosa.mel_frequencies(n_mels + 2, fmin=fmin,
                                                    fmax=self.fmax)[1:-1]

    @property
    def hop_seconds(self) -> float:
        return self.stft.hop / self.stft.sample_rate

    def band_of(self, frequency: float) -> int:
        """The index of the band whose centre is closest to ``frequency`` (Hz)."""
        return int(np.argmin(np.abs(self.band_centers - frequency)))

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed samples; returns the new frames as ``k x n_mels`` dB values (k may be 0).

        The result is a view of an internal buffer when it fits in one batch: use or copy
        it before the next push.
        """
        batches = self.stft.push(samples)
        if not batches:
            return self._mel[:0]
        if len(batches) == 1:
            return self._to_db(batches[0])
        return np.concatenate([self._to_db(power).copy() for power in batches])

    def _to_db(self, power: np.ndarray) -> np.ndarray:
        mel = self._mel[:len(power)]
        np.matmul(power, self._filterbank_t, out=mel)
        np.maximum(mel, POWER_FLOOR, out=mel)
        np.log10(mel, out=mel)
        mel *= 10.0
        return mel
