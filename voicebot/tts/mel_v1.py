"""THE mel spectrogram of voices trained here: HiFi-GAN V1's (jik876 ``meldataset.py``).

The embedded vocoder (``hifigan-v1-universal``) was trained on exactly this mel, so an
acoustic model trained on it needs no renormalisation at all:

- 22050 Hz audio in [-1, 1], n_fft 1024, hop 256, window 1024 (periodic Hann);
- the signal reflect-padded by (n_fft - hop) / 2 = 384 samples on both sides, frames
  taken without centring: ``len(audio) // 256`` frames, frame t covering samples
  [256 t - 384, 256 t + 640);
- magnitude ``sqrt(re^2 + im^2 + 1e-9)``, Slaney-style mel basis (librosa's default)
  of 80 bands over 0-8000 Hz, natural log of ``max(mel, 1e-5)``.

Coqui-format voices (a downloaded Tacotron2) predict a dB-scaled, usually normalized mel:
``coqui_to_v1`` undoes Coqui's normalisation and dB scale exactly and ``v1_to_coqui`` is
its inverse. When the Coqui voice's filterbank differs from V1's (Coqui's LJSpeech
models use 50-7600 Hz), the bands are mapped by least squares (``_band_map``,
``_edge_fill``), which is the one approximate step (mean ln error 0.065 on speech); the
framing differs by half a hop (Coqui centres frames), which only shifts the audio by 128
samples.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

SAMPLE_RATE = 22050
N_FFT = 1024
HOP_LENGTH = 256
WIN_LENGTH = 1024
N_MELS = 80
FMIN = 0.0
FMAX = 8000.0
CLAMP = 1e-5  # floor of the mel before the log: ln(1e-5) = -11.51 is "silence"
MAGNITUDE_EPS = 1e-9  # added under the square root, as V1's training code does
PAD = (N_FFT - HOP_LENGTH) // 2  # 384
COQUI_DB_FLOOR = 1e-8  # Coqui's amp_to_db clamps here before the log


@functools.cache
def mel_basis(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS,
              fmin: float = FMIN, fmax: float | None = FMAX) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) Slaney mel filterbank, float64 (librosa's, as V1 and Coqui).

    Read-only: it is shared between callers.
    """
    import librosa

    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                fmax=fmax, htk=False, norm="slaney", dtype=np.float64)
    basis.setflags(write=False)
    return basis


@functools.cache
def _window() -> np.ndarray:
    # torch.hann_window's default is periodic (denominator N, not N - 1).
    n = np.arange(WIN_LENGTH, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)


def magnitude_frames(audio: np.ndarray) -> np.ndarray:
    """(513, frames) STFT magnitude of 22050 Hz audio, framed as V1 frames it."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    if audio.size <= PAD:
        raise ValueError(f"audio too short for the V1 mel: {audio.size} samples "
                         f"(reflect padding needs more than {PAD})")
    padded = np.pad(audio, (PAD, PAD), mode="reflect")
    frames = 1 + (padded.size - N_FFT) // HOP_LENGTH
    view = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:frames]
    spectrum = np.fft.rfft(view * _window(), axis=1)
    return np.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + MAGNITUDE_EPS).T


def mel_v1(audio: np.ndarray) -> np.ndarray:
    """(80, len(audio) // 256) float32 log-mel of 22050 Hz float audio: V1's definition."""
    mel = mel_basis() @ magnitude_frames(audio)
    return np.log(np.maximum(mel, CLAMP)).astype(np.float32)


# --- Coqui audio configs -----------------------------------------------------------------

def v1_audio_config() -> dict[str, Any]:
    """Coqui ``BaseAudioConfig`` fields that declare a Tacotron2 predicting the V1 mel.

    Coqui's own ``AudioProcessor`` with these fields computes ln(max(mel, 1e-8)) of
    centred frames, close to but not exactly V1's: training computes its targets with
    ``mel_v1`` and uses these fields only to say what the model predicts.
    """
    return {"sample_rate": SAMPLE_RATE, "fft_size": N_FFT, "hop_length": HOP_LENGTH,
            "win_length": WIN_LENGTH, "num_mels": N_MELS, "mel_fmin": FMIN,
            "mel_fmax": FMAX, "signal_norm": False, "log_func": "np.log", "spec_gain": 1.0,
            "preemphasis": 0.0, "do_amp_to_db_mel": True, "stats_path": None,
            "power": 1.5, "do_trim_silence": False}


def _fields(audio_config: Any) -> Mapping[str, Any]:
    if isinstance(audio_config, Mapping):
        return audio_config
    if hasattr(audio_config, "to_dict"):
        return audio_config.to_dict()
    return vars(audio_config)


def is_v1_audio(audio_config: Any) -> bool:
    """True when a Coqui audio config (object or dict) declares the V1 mel above."""
    fields = _fields(audio_config)
    try:
        return (int(fields["sample_rate"]) == SAMPLE_RATE
                and int(fields["fft_size"]) == N_FFT
                and int(fields["hop_length"] or 0) == HOP_LENGTH
                and int(fields["win_length"] or 0) == WIN_LENGTH
                and int(fields["num_mels"]) == N_MELS
                and float(fields["mel_fmin"] or 0.0) == FMIN
                and fields["mel_fmax"] is not None and float(fields["mel_fmax"]) == FMAX
                and not fields["signal_norm"]
                and fields["log_func"] == "np.log"
                and float(fields["spec_gain"]) == 1.0
                and float(fields["preemphasis"] or 0.0) == 0.0
                and fields.get("do_amp_to_db_mel", True))
    except KeyError:
        return False


def _same_framing(fields: Mapping[str, Any]) -> None:
    """The conversion is per frame: time resolution and sample rate must already agree."""
    wanted = {"sample_rate": SAMPLE_RATE, "fft_size": N_FFT, "hop_length": HOP_LENGTH}
    wrong = {k: fields.get(k) for k, v in wanted.items() if int(fields.get(k) or 0) != v}
    if wrong:
        raise ValueError(f"a Coqui mel with {wrong} cannot be converted to the V1 mel "
                         f"(needs {wanted}): resample/retrain instead")


@functools.cache
def _band_map(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
              ) -> np.ndarray | None:
    """(80, n_mels) matrix taking another filterbank's amplitude mel to V1's, or None
    when both filterbanks are identical (then the conversion is exact).

    V1 basis @ pinv(other basis): the least-squares linear spectrum behind the other mel,
    seen through V1's bands. Exact for spectra inside the other filterbank's span;
    ``coqui_to_v1`` fills the V1 bands reaching outside it from the nearest bands instead
    (``_edge_fill``).
    """
    other = mel_basis(sample_rate, n_fft, n_mels, fmin, fmax)
    target = mel_basis()
    if other.shape == target.shape and np.array_equal(other, target):
        return None
    return target @ np.linalg.pinv(other)


def _edge_fill(log_mel: np.ndarray, fields: Mapping[str, Any], converted: np.ndarray
               ) -> np.ndarray:
    """``converted`` with the V1 bands that reach outside the other filterbank's range
    replaced by the other ln-mel interpolated at their centres (on the mel scale, the
    edge band's value beyond the range).

    The least-squares map alone puts almost no energy there. Measured on LibriVox speech
    with a quiet noise floor, against mel_v1 of the same audio (mean abs ln difference):
    Coqui LJSpeech's 50-7600 Hz bands 0.116 by least squares alone, 0.065 with the 4 edge
    bands filled (interpolating every band: 0.079); 0-11025 Hz bands: 0.075 (no V1 band
    reaches outside them).
    """
    import librosa

    fmin = float(fields.get("mel_fmin") or 0.0)
    fmax = fields.get("mel_fmax")
    fmax = float(fmax) if fmax is not None else int(fields["sample_rate"]) / 2
    v1_edges = librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)
    outside = (v1_edges[:-2] < fmin) | (v1_edges[2:] > fmax)
    if not outside.any():
        return converted
    n_mels = int(fields["num_mels"])
    source = librosa.hz_to_mel(librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax)[1:-1])
    target = librosa.hz_to_mel(v1_edges[1:-1][outside])
    filled = np.stack([np.interp(target, source, frame) for frame in log_mel.T], axis=1)
    converted = converted.copy()
    converted[outside] = filled
    return converted


def _bands_of(fields: Mapping[str, Any]) -> np.ndarray | None:
    fmax = fields.get("mel_fmax")
    return _band_map(int(fields["sample_rate"]), int(fields["fft_size"]),
                     int(fields["num_mels"]), float(fields.get("mel_fmin") or 0.0),
                     None if fmax is None else float(fmax))


def _db_scale(fields: Mapping[str, Any]) -> tuple[float, float]:
    """(spec_gain, log base) of Coqui's amp_to_db."""
    base = {"np.log": np.e, "np.log10": 10.0}.get(fields.get("log_func", "np.log10"))
    if base is None:
        raise ValueError(f"unknown Coqui log_func {fields.get('log_func')!r}")
    return float(fields.get("spec_gain", 20.0)), base


def coqui_denormalize(mel: np.ndarray, fields: Mapping[str, Any]) -> np.ndarray:
    """Coqui's normalized mel -> its dB mel (``AudioProcessor.denormalize`` for range
    normalisation; mean-variance stats files are read by Coqui's own AudioProcessor)."""
    mel = np.asarray(mel, dtype=np.float64)
    if not fields.get("signal_norm", True):
        return mel
    if fields.get("stats_path"):
        from TTS.config.shared_configs import BaseAudioConfig
        from TTS.utils.audio import AudioProcessor

        config = BaseAudioConfig()
        config.from_dict(dict(fields))
        return np.asarray(AudioProcessor(config).denormalize(mel), dtype=np.float64)
    max_norm, min_db = float(fields["max_norm"]), float(fields["min_level_db"])
    ref_db = float(fields["ref_level_db"])
    if fields.get("symmetric_norm", True):
        if fields.get("clip_norm", True):
            mel = np.clip(mel, -max_norm, max_norm)
        return (mel + max_norm) * -min_db / (2 * max_norm) + min_db + ref_db
    if fields.get("clip_norm", True):
        mel = np.clip(mel, 0, max_norm)
    return mel * -min_db / max_norm + min_db + ref_db


def coqui_normalize(mel_db: np.ndarray, fields: Mapping[str, Any]) -> np.ndarray:
    """The inverse of ``coqui_denormalize`` (Coqui's ``AudioProcessor.normalize``)."""
    mel_db = np.asarray(mel_db, dtype=np.float64)
    if not fields.get("signal_norm", True):
        return mel_db
    if fields.get("stats_path"):
        raise ValueError("Coqui mean-variance normalisation: convert with its AudioProcessor")
    max_norm, min_db = float(fields["max_norm"]), float(fields["min_level_db"])
    unit = (mel_db - float(fields["ref_level_db"]) - min_db) / -min_db
    if fields.get("symmetric_norm", True):
        scaled = 2 * max_norm * unit - max_norm
        return np.clip(scaled, -max_norm, max_norm) if fields.get("clip_norm", True) else scaled
    scaled = max_norm * unit
    return np.clip(scaled, 0, max_norm) if fields.get("clip_norm", True) else scaled


def coqui_to_v1(mel: np.ndarray, audio_config: Any) -> np.ndarray:
    """A Coqui-format mel (n_mels, frames) as it would come out of Coqui's
    ``AudioProcessor.melspectrogram`` -> V1 log-mel (80, frames), float32.

    Exact up to float rounding where the filterbanks agree; what Coqui's clipping threw
    away (levels below min_level_db + ref_level_db, e.g. -100 + 20 dB, i.e. amplitudes
    below 1e-4) comes back as that floor, not as V1's 1e-5.
    """
    fields = _fields(audio_config)
    _same_framing(fields)
    gain, base = _db_scale(fields)
    amplitude = coqui_denormalize(mel, fields)
    if fields.get("do_amp_to_db_mel", True):
        amplitude = np.power(base, amplitude / gain)
    bands = _bands_of(fields)
    if bands is None:
        return np.log(np.maximum(amplitude, CLAMP)).astype(np.float32)
    converted = np.log(np.maximum(bands @ amplitude, CLAMP))
    own = np.log(np.maximum(amplitude, CLAMP))
    return _edge_fill(own, fields, converted).astype(np.float32)


def v1_to_coqui(mel: np.ndarray, audio_config: Any) -> np.ndarray:
    """V1 log-mel (80, frames) -> the Coqui-format mel of ``audio_config``, float32."""
    fields = _fields(audio_config)
    _same_framing(fields)
    gain, base = _db_scale(fields)
    amplitude = np.exp(np.asarray(mel, dtype=np.float64))
    bands = _bands_of(fields)
    if bands is not None:  # the reverse least-squares map
        amplitude = np.maximum(np.linalg.pinv(bands) @ amplitude, 0.0)
    if fields.get("do_amp_to_db_mel", True):
        amplitude = gain * np.log(np.maximum(COQUI_DB_FLOOR, amplitude)) / np.log(base)
    return coqui_normalize(amplitude, fields).astype(np.float32)


Converter = Callable[[np.ndarray], np.ndarray]


def renormalizer(acoustic_audio: Any, vocoder_audio: Any) -> Converter | None:
    """What turns the acoustic model's mel into the vocoder's, or None for identity.

    V1 -> V1 needs nothing; Coqui -> V1 and V1 -> Coqui use the converters above;
    Coqui -> Coqui is Coqui's own denormalise-then-normalise (as its Synthesizer does;
    both configs are Coqui ``BaseAudioConfig`` objects then).
    """
    acoustic_v1, vocoder_v1 = is_v1_audio(acoustic_audio), is_v1_audio(vocoder_audio)
    if acoustic_v1 and vocoder_v1:
        return None
    if vocoder_v1:
        fields = dict(_fields(acoustic_audio))
        return lambda mel: coqui_to_v1(mel, fields)
    if acoustic_v1:
        fields = dict(_fields(vocoder_audio))
        return lambda mel: v1_to_coqui(mel, fields)
    from TTS.utils.audio import AudioProcessor

    acoustic_ap = AudioProcessor(acoustic_audio)
    vocoder_ap = AudioProcessor(vocoder_audio)
    return lambda mel: vocoder_ap.normalize(acoustic_ap.denormalize(mel))
