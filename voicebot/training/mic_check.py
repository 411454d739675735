"""Microphone check before recording: noise floor, speaking level, clipping, with advice.

The user is quiet for a couple of seconds (the noise floor), then reads a sentence (the
level). Advice is phrased as what to do, not what was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from voicebot.training.quality import clipped_fraction, dbfs

# A quiet room with a decent microphone sits well below -50 dBFS; a fan or a laptop mic
# with automatic gain lands around -45.
NOISY_FLOOR_DBFS = -45.0
GOOD_PEAK_RANGE_DBFS = (-18.0, -2.0)
QUIET_PEAK_DBFS = -30.0
MIN_SNR_DB = 25.0


@dataclass
class MicCheck:
    noise_floor_dbfs: float
    speech_peak_dbfs: float
    speech_rms_dbfs: float
    clipped: bool
    snr_db: float
    ok: bool = True
    advice: list[str] = field(default_factory=list)

    def text(self) -> str:
        head = (f"Noise floor {self.noise_floor_dbfs:.0f} dBFS, speech peaks "
                f"{self.speech_peak_dbfs:.0f} dBFS, {self.snr_db:.0f} dB above the noise.")
        return head + "\n" + "\n".join(self.advice)


def _rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -120.0
    return dbfs(float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))))


def analyze(quiet: np.ndarray, speaking: np.ndarray) -> MicCheck:
    """Judge a stretch recorded in silence and one recorded while speaking."""
    quiet = np.asarray(quiet, dtype=np.float32)
    speaking = np.asarray(speaking, dtype=np.float32)
    noise = _rms_dbfs(quiet)
    peak = dbfs(float(np.max(np.abs(speaking)))) if speaking.size else -120.0
    # Speech level: the loud half of 20 ms frames (pauses would drag a plain RMS down).
    frames = speaking[: len(speaking) // 320 * 320].reshape(-1, 320) if speaking.size >= 320 \
        else speaking.reshape(1, -1)
    energies = np.sort(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = energies[len(energies) // 2:] if len(energies) > 1 else energies
    speech_rms = 10 * math.log10(max(float(loud.mean()), 1e-12)) if loud.size else -120.0
    clipped = clipped_fraction(speaking, 0.98, 3) > 0.0005
    check = MicCheck(noise, peak, speech_rms, clipped, speech_rms - noise)
    if clipped:
        check.advice.append("Your voice clips (distorts): lower the input gain or move back "
                            "from the microphone.")
    elif peak < QUIET_PEAK_DBFS:
        check.advice.append("Your voice is very quiet: raise the input gain or move closer "
                            "(about a hand's width from the microphone).")
    elif peak < GOOD_PEAK_RANGE_DBFS[0]:
        check.advice.append("Your voice is a little quiet: speak up or raise the gain a bit.")
    if noise > NOISY_FLOOR_DBFS:
        check.advice.append("The room is noisy: switch off fans, music or the TV, close the "
                            "window, or record in a smaller room with soft furnishings.")
    if check.snr_db < MIN_SNR_DB and not clipped:
        check.advice.append(f"Your voice is only {check.snr_db:.0f} dB above the background "
                            f"(aim for {MIN_SNR_DB:.0f}+): get closer to the microphone or "
                            "make the room quieter.")
    check.ok = not check.advice
    if check.ok:
        check.advice.append("Sounds good: keep this distance and gain for every take.")
    return check
