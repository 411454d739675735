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

from voicebot.audio.resample import ASR_RATE

log = logging.getLogger(__name__)


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
    if sample_rate != ASR_RATE and samples.size:
        import soxr

        samples = soxr.resample(samples, sample_rate, ASR_RATE, quality="HQ")
        samples = np.asarray(samples, dtype=np.float32)
    return samples


# Below this a file holds no word (the shortest English words last ~0.15 s); above the
# rate limit a header is lying (no sound card or codec records faster than 384 kHz).
MIN_FILE_SECONDS = 0.1
MAX_FILE_RATE = 384_000
MIN_FILE_RATE = 4_000


class AudioFileError(ValueError):
    """A file that cannot be transcribed; the message is one line for the user."""


def read_audio_file(path) -> np.ndarray:
    """A sound file (WAV, FLAC, OGG, or headerless 16 kHz int16 .raw) as recogniser audio.

    Raises ``AudioFileError`` with a one-line reason for what cannot hold speech: a missing
    or unreadable file, an absurd sample rate, no samples, samples that are all NaN/inf,
    or less than ``MIN_FILE_SECONDS`` of sound.
    """
    import os

    import soundfile as sf

    path = str(path)
    if not os.path.isfile(path):
        raise AudioFileError("no such file" if not os.path.exists(path) else "not a file")
    if path.endswith(".raw"):
        # pocketsphinx's test data: headerless 16 kHz signed 16-bit little-endian.
        data, rate = np.fromfile(path, dtype="<i2"), ASR_RATE
    else:
        try:
            data, rate = sf.read(path, dtype="float32", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioFileError(f"not a sound file this app can read ({exc})") from None
    if not MIN_FILE_RATE <= rate <= MAX_FILE_RATE:
        raise AudioFileError(f"the file claims a sample rate of {rate} Hz, which no "
                             "recording has: the file is damaged")
    if np.size(data) == 0:
        raise AudioFileError("the file holds no audio samples")
    if not np.isfinite(np.asarray(data, dtype=np.float32)).any():
        raise AudioFileError("every sample in the file is NaN or infinite: the file is damaged")
    seconds = (data.shape[0] if np.ndim(data) else 0) / rate
    if seconds < MIN_FILE_SECONDS:
        raise AudioFileError(f"the file holds only {seconds * 1000:.1f} ms of audio, too short "
                             "for a word")
    if path.endswith(".raw"):
        return sanitize(data)
    return to_recognizer_audio(data, rate)
