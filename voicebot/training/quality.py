"""Automatic checks of one recorded take, each failure with a reason a person can act on.

A take is judged on what a voice model would learn from it: clipping (distortion the
model would copy), the signal-to-noise ratio (it would learn the hiss too), the level,
the length of the speech, whether there is speech at all (Silero VAD), and whether the
speech was cut off at either end. The take is also trimmed to its speech plus a short
margin, since long silences at the edges teach Tacotron2 to hesitate.

Everything is measured on the float samples the recorder (or an import) provides; the
VAD runs on a 16 kHz copy, as Silero expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from voicebot.audio.vad import FRAME
from voicebot.audio.vad import RATE as VAD_RATE

FRAME_S = FRAME / VAD_RATE  # 32 ms analysis frames, aligned with the VAD's


@dataclass(frozen=True)
class QualityLimits:
    clip_level: float = 0.98  # |sample| at or above this may be clipped...
    clip_run: int = 3  # ...when this many in a row sit there (a flat top)
    max_clipped_fraction: float = 0.0005  # of all samples in flat-topped runs
    min_snr_db: float = 15.0  # 64 kb/s LibriVox reads measure 20-22 dB; fans ~10 dB
    min_peak_dbfs: float = -30.0
    min_speech_rms_dbfs: float = -42.0
    min_speech_s: float = 0.7
    max_speech_s: float = 15.0
    vad_threshold: float = 0.5
    margin_s: float = 0.15  # silence kept before and after the speech
    # Speech probability in the first/last frame above this: the take starts or ends
    # inside a word.
    cut_off_probability: float = 0.7


@dataclass
class TakeCheck:
    """The verdict on one take; ``reasons`` are sentences for the user."""

    ok: bool
    problems: list[str] = field(default_factory=list)  # stable codes for code and tests
    reasons: list[str] = field(default_factory=list)
    trimmed: np.ndarray | None = None  # the take cut to its speech (+ margin)
    sample_rate: int = 0
    duration_s: float = 0.0
    speech_s: float = 0.0
    peak_dbfs: float = -120.0
    speech_rms_dbfs: float = -120.0
    snr_db: float | None = None
    clipped_fraction: float = 0.0

    @property
    def summary(self) -> str:
        if self.ok:
            snr = f", SNR {self.snr_db:.0f} dB" if self.snr_db is not None else ""
            return f"OK: {self.speech_s:.1f} s of speech{snr}"
        return " ".join(self.reasons)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "problems": self.problems, "reasons": self.reasons,
                "duration_s": round(self.duration_s, 3), "speech_s": round(self.speech_s, 3),
                "peak_dbfs": round(self.peak_dbfs, 1),
                "speech_rms_dbfs": round(self.speech_rms_dbfs, 1),
                "snr_db": None if self.snr_db is None else round(self.snr_db, 1),
                "clipped_fraction": round(self.clipped_fraction, 6)}


def dbfs(amplitude: float) -> float:
    return 20.0 * math.log10(amplitude) if amplitude > 1e-6 else -120.0


def clipped_fraction(samples: np.ndarray, level: float, run: int) -> float:
    """Share of samples inside runs of >= ``run`` consecutive samples at >= ``level``.

    Loud speech touches full scale now and then; clipping shows as flat tops.
    """
    high = np.abs(samples) >= level
    if not high.any():
        return 0.0
    edges = np.diff(np.concatenate([[0], high.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    return float(lengths[lengths >= run].sum()) / len(samples)


class TakeChecker:
    """Checks takes; holds the VAD model so it is loaded once per recording session."""

    def __init__(self, limits: QualityLimits | None = None, vad=None) -> None:
        self.limits = limits or QualityLimits()
        self._vad = vad

    @property
    def vad(self):
        if self._vad is None:
            from voicebot.audio.vad import SileroVad

            self._vad = SileroVad()
        return self._vad

    def speech_probabilities(self, samples: np.ndarray, rate: int) -> np.ndarray:
        import soxr

        audio16 = samples if rate == VAD_RATE else soxr.resample(samples, rate, VAD_RATE)
        self.vad.reset()
        # A frame of silence after the end lets the last partial frame be judged.
        padded = np.concatenate([audio16.astype(np.float32), np.zeros(FRAME, np.float32)])
        return np.asarray(self.vad.probabilities(padded), dtype=np.float32)

    def check(self, samples: np.ndarray, rate: int) -> TakeCheck:
        limits = self.limits
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError("a take is mono: give a 1-D array")
        result = TakeCheck(ok=False, sample_rate=rate, duration_s=len(audio) / rate)
        if len(audio) < FRAME_S * rate * 2:
            return _fail(result, "too_short", "The recording is empty or almost empty: "
                                              "hold the record button while you read.")
        audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
        result.peak_dbfs = dbfs(float(np.max(np.abs(audio))))
        result.clipped_fraction = clipped_fraction(audio, limits.clip_level, limits.clip_run)

        probabilities = self.speech_probabilities(audio, rate)
        speech = probabilities >= limits.vad_threshold
        hop = round(FRAME_S * rate)
        frames = _frame_energies(audio, hop, len(probabilities))
        if not speech.any():
            result.reasons.append("No speech was heard: check that the right microphone is "
                                  "selected and not muted, then read the sentence aloud.")
            result.problems.append("no_speech")
            return result
        first, last = np.flatnonzero(speech)[[0, -1]]
        result.speech_s = float((last - first + 1) * FRAME_S)
        speech_energy = float(frames[speech].mean())
        result.speech_rms_dbfs = 10.0 * math.log10(max(speech_energy, 1e-12))
        result.snr_db = _snr_db(audio, rate, speech_energy)

        margin = int(limits.margin_s * rate)
        start = max(0, first * hop - margin)
        end = min(len(audio), (last + 1) * hop + margin)
        result.trimmed = audio[start:end].copy()

        if result.clipped_fraction > limits.max_clipped_fraction:
            _add(result, "clipped", f"The recording is clipped (distorted) in "
                 f"{100 * result.clipped_fraction:.2f}% of it: turn the input gain down or "
                 "move a little away from the microphone.")
        if result.peak_dbfs < limits.min_peak_dbfs or \
                result.speech_rms_dbfs < limits.min_speech_rms_dbfs:
            _add(result, "too_quiet", f"The voice is too quiet (peak {result.peak_dbfs:.0f} "
                 "dBFS): speak up, move closer or raise the input gain.")
        if result.snr_db is not None and result.snr_db < limits.min_snr_db:
            _add(result, "noisy", f"There is too much background noise (speech is only "
                 f"{result.snr_db:.0f} dB above it; {limits.min_snr_db:.0f} dB needed): "
                 "find a quieter room, or switch off fans and music.")
        if result.speech_s < limits.min_speech_s:
            _add(result, "too_short", f"Only {result.speech_s:.1f} s of speech: read the "
                 "whole sentence.")
        if result.speech_s > limits.max_speech_s:
            _add(result, "too_long", f"{result.speech_s:.0f} s of speech is too long for "
                 f"one take (at most {limits.max_speech_s:.0f} s): read just this sentence.")
        if probabilities[:2].max() >= limits.cut_off_probability:
            _add(result, "cut_off_start", "The recording starts in the middle of speech: "
                 "start recording, then begin to read.")
        # The last real frame (the padding frame is after it).
        if probabilities[min(len(probabilities) - 2, len(audio) // hop - 1)] \
                >= limits.cut_off_probability:
            _add(result, "cut_off_end", "The recording ends in the middle of speech: "
                 "finish the sentence before you stop recording.")
        result.ok = not result.problems
        return result


def _frame_energies(audio: np.ndarray, hop: int, count: int) -> np.ndarray:
    padded = np.zeros(count * hop, np.float32)
    n = min(len(audio), len(padded))
    padded[:n] = audio[:n]
    frames = padded.reshape(count, hop)
    return np.einsum("ij,ij->i", frames, frames) / hop


def _snr_db(audio: np.ndarray, rate: int, speech_energy: float) -> float | None:
    # Noise: the quietest tenth of 10 ms slices. The VAD's non-speech frames would be
    # the obvious choice, but they include breaths and word edges (and a tightly cut take
    # has almost none); the quietest slices of the pauses are the noise floor itself.
    hop = max(1, rate // 100)
    count = len(audio) // hop
    slices = audio[:count * hop].reshape(count, hop)
    energies = np.einsum("ij,ij->i", slices, slices) / hop
    noise = float(np.percentile(energies, 10))
    if noise <= 1e-10:
        return 99.0  # digital silence between words: nothing to hear
    return 10.0 * math.log10(max(speech_energy, 1e-12) / noise)


def _add(result: TakeCheck, code: str, reason: str) -> None:
    result.problems.append(code)
    result.reasons.append(reason)


def _fail(result: TakeCheck, code: str, reason: str) -> TakeCheck:
    _add(result, code, reason)
    result.ok = False
    return result


def check_take(samples: np.ndarray, rate: int, limits: QualityLimits | None = None
               ) -> TakeCheck:
    """One-off check (loads the VAD each call; use ``TakeChecker`` for many takes)."""
    return TakeChecker(limits).check(samples, rate)
