"""What the recognisers accept as audio, and the one place that cleans it.

Recognisers take mono float32 samples at 16 kHz in [-1, 1]. The capture layer delivers
exactly that; files and other sources go through ``to_recognizer_audio`` (which
downmixes and resamples with soxr). Inside ``feed`` every engine also calls
``sanitize`` so that bad samples never reach a model: NaN/inf become silence and values
outside [-1, 1] (clipping from a hot microphone, int16 passed by mistake) are clamped.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def sanitize(audio: np.ndarray) -> np.ndarray:
    """A 1-D float32 copy-free-when-possible view with finite samples in [-1, 1]."""
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(
            f"recognisers take mono audio (1-D), got shape {samples.shape}; downmix first "
            "(to_recognizer_audio does)")
    if samples.dtype != np.float32:
        if np.issubdtype(samples.dtype, np.integer):
            # Integer PCM: scale by the type's full range, as audio files store it.
            samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max)
        else:
            samples = samples.astype(np.float32)
    if not np.isfinite(samples).all():
        log.debug("replacing %d non-finite samples with silence",
                  int((~np.isfinite(samples)).sum()))
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    if samples.size and float(np.abs(samples).max()) > 1.0:
        samples = np.clip(samples, -1.0, 1.0)
    return samples


def to_recognizer_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Any-rate, any-channel audio (frames x channels or 1-D) -> mono 16 kHz float32."""
    samples = np.asarray(audio)
    if samples.ndim == 2:
        samples = samples.astype(np.float32).mean(axis=1)
    elif samples.ndim != 1:
        raise ValueError(f"expected 1-D or frames x channels audio, got shape {samples.shape}")
    samples = sanitize(samples)
    if sample_rate != SAMPLE_RATE and samples.size:
        import soxr

        samples = soxr.resample(samples, sample_rate, SAMPLE_RATE, quality="HQ")
        samples = np.asarray(samples, dtype=np.float32)
    return samples


def read_audio_file(path) -> np.ndarray:
    """A sound file (WAV, FLAC, OGG, or headerless 16 kHz int16 .raw) as recogniser audio."""
    import soundfile as sf

    path = str(path)
    if path.endswith(".raw"):
        # pocketsphinx's test data: headerless 16 kHz signed 16-bit little-endian.
        data = np.fromfile(path, dtype="<i2")
        return sanitize(data)
    data, rate = sf.read(path, dtype="float32", always_2d=False)
    return to_recognizer_audio(data, rate)
