"""WAV files: atomic 16-bit PCM writing and validating, sanitising reading.

Writing goes to a temporary file in the target folder, which is flushed, fsynced and then
renamed over the final name (and the folder fsynced), so a crash or a full disk never
leaves a half-written recording under the final name: readers see the old file or the
new one, nothing in between.

Reading accepts only what the app can use and says why otherwise: unreadable or
malformed headers, empty files, absurd sample rates and files that are not audio all raise
:class:`AudioFileError` naming the file. NaN and infinite samples (possible in float
WAVs) become silence and out-of-range values are clipped; ``WavData.repaired`` counts them.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voicebot.audio.resample import StreamResampler

MIN_RATE = 4_000
MAX_RATE = 384_000


class AudioFileError(ValueError):
    """An audio file cannot be read or written; the message says which file and why."""


@dataclass
class WavData:
    samples: np.ndarray  # float32, -1..1; 1-D when mono, else frames x channels
    sample_rate: int
    repaired: int = 0  # NaN/inf/out-of-range samples that were replaced or clipped

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def sanitize(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """float32 copy with NaN -> 0, +-inf -> +-1 and everything clipped to -1..1."""
    audio = np.array(samples, dtype=np.float32)
    bad = ~np.isfinite(audio) | (np.abs(audio) > 1.0)
    repaired = int(np.count_nonzero(bad))
    if repaired:
        np.nan_to_num(audio, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(audio, -1.0, 1.0, out=audio)
    return audio, repaired


def read_wav(path: str | os.PathLike, *, mono: bool = True,
             sample_rate: int | None = None) -> WavData:
    """Read an audio file as float32; optionally mixed to mono and resampled."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioFileError(f"{path}: the file is empty")
    try:
        with sf.SoundFile(path) as fh:
            rate = int(fh.samplerate)
            if not MIN_RATE <= rate <= MAX_RATE:
                raise AudioFileError(f"{path}: implausible sample rate {rate} Hz "
                                     f"(expected {MIN_RATE}..{MAX_RATE})")
            if fh.channels < 1:
                raise AudioFileError(f"{path}: the header declares no channels")
            audio = fh.read(dtype="float32", always_2d=True)
    except AudioFileError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc})") from exc
    if audio.size == 0:
        raise AudioFileError(f"{path}: the file holds no audio samples")
    audio, repaired = sanitize(audio)
    if mono:
        audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sample_rate and sample_rate != rate:
        if not mono:
            raise AudioFileError("resampling on read is only supported for mono")
        resampler = StreamResampler(rate, sample_rate)
        audio = np.concatenate([resampler.process(audio), resampler.flush()])
        rate = sample_rate
    return WavData(np.ascontiguousarray(audio), rate, repaired)


class AtomicWavWriter:
    """Write a 16-bit PCM WAV incrementally; it appears under its name only on success.

    Use as a context manager: leaving the block normally commits the file, an exception
    discards it (the previous file of that name, if any, stays untouched)::

        with AtomicWavWriter(path, 22050) as wav:
            wav.write(block)          # float -1..1, any number of times
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int = 1) -> None:
        self.path = Path(path)
        if not MIN_RATE <= sample_rate <= MAX_RATE:
            raise AudioFileError(f"{self.path}: refusing to write sample rate {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.channels = channels
        self.frames = 0
        self.repaired = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                   dir=self.path.parent)
        self._tmp = Path(tmp)
        self._raw = os.fdopen(fd, "w+b")
        self._sf = sf.SoundFile(self._raw, mode="w", samplerate=self.sample_rate,
                                channels=channels, format="WAV", subtype="PCM_16")

    def write(self, samples: np.ndarray) -> None:
        audio, repaired = sanitize(samples)
        self.repaired += repaired
        self._sf.write(audio)
        self.frames += len(audio)

    def commit(self) -> Path:
        self._sf.close()  # writes the final header sizes
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._tmp, self.path)
        _fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._sf.close()
        with contextlib.suppress(Exception):
            self._raw.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> AtomicWavWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (e.g. Windows).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_wav_atomic(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write ``samples`` (float, mono or frames x channels) as 16-bit PCM, atomically."""
    audio = np.asarray(samples)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    with AtomicWavWriter(path, sample_rate, channels) as wav:
        wav.write(audio)
    return Path(path)
