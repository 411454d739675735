"""The embedded HiFi-GAN V1 vocoder and the V1 mel: real weights, real recorded speech.

Copy-synthesis (recorded speech -> ``mel_v1`` -> vocoder) must be understood by the app's
Whisper as well as the recording itself; ``mel_v1`` must equal an independent torch
implementation of V1's definition; Coqui's dB mels must convert to it exactly; the ONNX
graphs and the streamed windows must match torch and the whole-utterance call.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from voicebot.paths import MODELS_ENV
from voicebot.tts import mel_v1 as mv

UTTERANCES = ("0880.wav", "0920.wav")  # 3.0 s and 5.3 s of LibriVox speech


@pytest.fixture(scope="module")
def speech():
    """[(reference text, 22050 Hz float32 audio)] of real recorded speech."""
    import soxr

    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import pocketsphinx_testdata

    items = [u for u in pocketsphinx_testdata() if u.audio.name.endswith(UTTERANCES)]
    if len(items) != len(UTTERANCES):
        pytest.skip("pocketsphinx-testdata is not installed (apt install pocketsphinx-testdata)")
    return [(u.reference, soxr.resample(read_audio_file(u.audio), 16000, mv.SAMPLE_RATE,
                                        quality="HQ").astype(np.float32)) for u in items]


@pytest.fixture(scope="module")
def v1():
    """(generator, config) of the embedded universal V1 vocoder."""
    from voicebot.models import resolve
    from voicebot.tts.hifigan_v1 import load_vocoder

    return load_vocoder(resolve("hifigan-v1-universal"))


@pytest.fixture(scope="module")
def vocoder_graphs(v1, tmp_path_factory):
    """The vocoder's ONNX folder (fp32 and int8), exported into a private models dir."""
    from voicebot.models import resolve
    from voicebot.tts.tacotron_onnx import exported_vocoder

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MODELS_ENV, str(tmp_path_factory.mktemp("v1-models")))
        return exported_vocoder(v1[0], True, resolve("hifigan-v1-universal"))


def _vocode(generator, mel: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return generator(torch.from_numpy(np.ascontiguousarray(mel))[None]).reshape(-1).numpy()


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_v1_weights_load_strictly_into_coquis_generator(v1):
    from voicebot.models import ModelStore, resolve
    from voicebot.tts.hifigan_v1 import VocoderError, build_v1_generator, load_v1_generator

    assert ModelStore().verify("hifigan-v1-universal")["ok"]
    path = resolve("hifigan-v1-universal")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == {"generator"}
    generator, config = v1
    assert type(generator).__name__ == "HifiganGenerator"
    assert mv.is_v1_audio(config.audio)
    # Weight norm folded in: plain weights, and 512 -> 256 channels after conv_pre.
    assert not any("parametrizations" in k for k in generator.state_dict())
    assert generator.conv_pre.weight.shape == (512, 80, 7)
    untrained = build_v1_generator()
    assert sum(p.numel() for p in untrained.parameters()) == \
        sum(v.numel() for v in state["generator"].values())
    # One weight fewer is refused, not silently left random.
    broken = dict(state["generator"])
    broken.pop("resblocks.5.convs2.1.weight_v")
    with pytest.raises(VocoderError, match="1 weights missing"):
        load_v1_generator(path, {"generator": broken})


def _torch_v1_mel(audio: np.ndarray, dtype=torch.float64) -> np.ndarray:
    """V1's mel written independently with torch.stft (as jik876's meldataset does)."""
    import librosa

    y = torch.from_numpy(audio).to(dtype)[None, None]
    y = torch.nn.functional.pad(y, (384, 384), mode="reflect")[:, 0]
    spec = torch.stft(y, 1024, hop_length=256, win_length=1024,
                      window=torch.hann_window(1024, dtype=dtype), center=False,
                      return_complex=True)
    magnitude = torch.sqrt(spec.real ** 2 + spec.imag ** 2 + 1e-9)
    basis = torch.from_numpy(librosa.filters.mel(sr=22050, n_fft=1024, n_mels=80, fmin=0,
                                                 fmax=8000)).to(dtype)
    return torch.log(torch.clamp(basis @ magnitude, min=1e-5))[0].float().numpy()


def test_mel_v1_equals_an_independent_torch_stft(speech):
    audio = speech[0][1]
    quiet = np.concatenate([np.zeros(3000, np.float32), audio[:20000] * 1e-4])  # the clamp
    for signal in (audio, quiet):
        ours, theirs = mv.mel_v1(signal), _torch_v1_mel(signal)
        assert ours.shape == theirs.shape == (80, len(signal) // 256)
        assert np.abs(ours - theirs).max() < 1e-4
    assert mv.mel_v1(quiet).min() == pytest.approx(np.log(1e-5), abs=1e-6)
    # In float32, as the vocoder was trained, torch's own rounding shows near the clamp
    # (measured: 2.5e-4 at ln mel -11.4, 5e-5 above -10, 2e-6 above -6).
    ours, float32 = mv.mel_v1(audio), _torch_v1_mel(audio, torch.float32)
    assert np.abs(ours - float32)[ours > -10].max() < 1e-4
    assert np.abs(ours - float32).max() < 1e-3


COQUI_DDC_NORM = {"signal_norm": True, "symmetric_norm": True, "max_norm": 4.0,
                  "clip_norm": True, "min_level_db": -100, "ref_level_db": 20,
                  "spec_gain": 20.0, "log_func": "np.log10"}


def _coqui_processor(**fields):
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.utils.audio import AudioProcessor

    config = BaseAudioConfig(**{**mv.v1_audio_config(), **fields})
    return config, AudioProcessor(config)


@pytest.mark.parametrize("norm", [COQUI_DDC_NORM, {"signal_norm": False, "spec_gain": 1.0,
                                                   "log_func": "np.log10"}])
def test_coqui_db_mel_converts_exactly_to_v1(speech, norm):
    """Coqui's AudioProcessor mel of a signal, converted, = mel_v1 of the same signal.

    Coqui centres its frames (pad 512) where V1 pads 384: Coqui's frame t of the signal
    without its first 128 samples covers V1's frame t, so interior frames are compared.
    A quiet noise floor keeps every level above Coqui's clipping (-80 dB) and V1's clamp,
    and makes V1's 1e-9 under the square root negligible.
    """
    audio = speech[0][1] + np.random.default_rng(0).normal(0, 0.01, speech[0][1].shape)
    audio = audio.astype(np.float32)
    config, processor = _coqui_processor(**norm)
    coqui = processor.melspectrogram(audio[128:])
    if norm["signal_norm"]:
        assert coqui.min() > -norm["max_norm"] + 0.1, "nothing may be clipped here"
    v1 = mv.mel_v1(audio)
    converted = mv.coqui_to_v1(coqui, config)
    frames = slice(2, min(v1.shape[1], converted.shape[1]) - 3)
    assert np.abs(converted[:, frames] - v1[:, frames]).max() < 1e-4
    # And back: V1 -> Coqui is its inverse.
    assert np.abs(mv.v1_to_coqui(converted, config) - coqui).max() < 1e-4


def test_renormalizer_picks_the_conversion(speech):
    config, _ = _coqui_processor(**COQUI_DDC_NORM)
    v1_audio = mv.v1_audio_config()
    assert mv.is_v1_audio(v1_audio) and not mv.is_v1_audio(config)
    assert mv.renormalizer(v1_audio, v1_audio) is None
    mel = mv.mel_v1(speech[0][1])
    to_v1 = mv.renormalizer(config, v1_audio)
    back = to_v1(mv.v1_to_coqui(mel, config))
    # Coqui's format clips below min_level_db + ref_level_db = -80 dB (amplitude 1e-4):
    # exact above that, the floor below it.
    kept = mel > np.log(1e-4) + 1e-3
    assert 0.5 < kept.mean() < 1.0
    assert np.abs(back - mel)[kept].max() < 1e-4
    assert np.allclose(back[~kept], np.maximum(mel[~kept], np.log(1e-4)), atol=1e-3)
    # Another framing is refused; Coqui's LJSpeech filterbank (50-7600 Hz) is mapped by
    # least squares with the edge bands filled in: close, not exact.
    with pytest.raises(ValueError, match="cannot be converted"):
        mv.coqui_to_v1(mel, {**config.to_dict(), "hop_length": 275})
    audio = speech[0][1] + np.random.default_rng(0).normal(0, 0.003, speech[0][1].shape)
    audio = audio.astype(np.float32)
    ljspeech, processor = _coqui_processor(**COQUI_DDC_NORM, mel_fmin=50.0, mel_fmax=7600.0)
    converted = mv.coqui_to_v1(processor.melspectrogram(audio[128:]), ljspeech)
    v1 = mv.mel_v1(audio)
    frames = slice(2, min(v1.shape[1], converted.shape[1]) - 3)
    error = np.abs(converted[:, frames] - v1[:, frames]).mean()
    assert error < 0.1  # measured 0.065 (least squares alone: 0.116)


@pytest.fixture(scope="module")
def recognizer():
    from voicebot.asr.factory import create_recognizer

    return create_recognizer("whisper", "whisper-tiny-en", device="cpu", streaming=False)


def _wer(recognizer, pairs) -> tuple[float, list[str]]:
    from voicebot.asr.audio_input import to_recognizer_audio
    from voicebot.asr.wer import ErrorCounts, count_errors

    total, heard = ErrorCounts(), []
    for reference, audio in pairs:
        recognizer.reset()
        recognizer.feed(to_recognizer_audio(audio, mv.SAMPLE_RATE))
        heard.append(recognizer.finish()[0].text)
        total.add(count_errors(reference, heard[-1]))
    return total.wer, heard


def test_copy_synthesis_of_real_speech_is_understood(speech, v1, vocoder_graphs, recognizer):
    """Recorded speech -> mel_v1 -> vocoder (torch fp32, and the ONNX int8 graph the CPU
    uses) is transcribed as well as the recording itself."""
    int8 = _session(vocoder_graphs / "hifigan.int8.onnx")
    original_wer, _ = _wer(recognizer, speech)
    mels = [mv.mel_v1(audio) for _, audio in speech]
    fp32 = [(ref, _vocode(v1[0], mel)) for (ref, _), mel in zip(speech, mels, strict=True)]
    quantized = [(ref, int8.run(None, {"mel": mel[None]})[0].reshape(-1))
                 for (ref, _), mel in zip(speech, mels, strict=True)]
    for (_, audio), mel in zip(fp32, mels, strict=True):
        assert audio.shape == (mel.shape[1] * 256,)
    for name, pairs in (("fp32", fp32), ("int8", quantized)):
        wer, heard = _wer(recognizer, pairs)
        assert wer <= max(0.1, original_wer + 0.05), f"{name}: WER {wer:.2f} {heard}"


def test_onnx_v1_matches_torch_and_int8_keeps_the_spectrum(speech, v1, vocoder_graphs):
    mel = mv.mel_v1(speech[0][1])[:, :120]
    expected = _vocode(v1[0], mel)
    fp32 = _session(vocoder_graphs / "hifigan.onnx").run(None, {"mel": mel[None]})[0]
    assert np.abs(fp32.reshape(-1) - expected).max() < 1e-3
    # int8 changes samples (phase) but must keep the spectrum: the log-mel of its audio
    # stays as close to the input mel as fp32's (measured 0.28 vs 0.26 on LibriVox).
    int8 = _session(vocoder_graphs / "hifigan.int8.onnx").run(None, {"mel": mel[None]})[0]
    error = lambda audio: np.abs(mv.mel_v1(audio.reshape(-1)) - mel)[:, 2:-2].mean()  # noqa: E731
    assert error(int8) < error(expected) + 0.05
    assert error(expected) < 0.35


def test_streamed_windows_equal_the_whole_utterance(speech, v1):
    from voicebot.tts.mel_stream import VOCODER_CONTEXT, MelToAudio

    mel = mv.mel_v1(speech[0][1])
    whole = _vocode(v1[0], mel)
    renderer = MelToAudio(lambda m: m, lambda m: _vocode(v1[0], m), hop=256, edge_pad=0,
                          postnet_context=0, vocoder_context=VOCODER_CONTEXT)
    windows = [w for start in range(0, mel.shape[1], 2)
               for w in renderer.push(mel[:, start:start + 2])]
    windows += list(renderer.finish())
    assert len(windows) >= 3
    streamed = np.concatenate(windows)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-4


def test_a_v1_mel_tacotron2_speaks_through_the_default_vocoder(tmp_path):
    """load_voice(<Tacotron2 folder>) picks hifigan-v1-universal; a V1-mel voice needs no
    renormalisation, and the audio is exactly frames * 256 samples (no edge padding)."""
    from voicebot.tts.base import collect
    from voicebot.tts.random_voice import write_random_tacotron2
    from voicebot.tts.voices import DEFAULT_VOCODER, VoiceOptions, load_voice

    assert DEFAULT_VOCODER == "hifigan-v1-universal"
    voice = load_voice(str(write_random_tacotron2(tmp_path)),
                       VoiceOptions(engine="torch", device="cpu"))
    assert mv.is_v1_audio(voice.tts_config.audio) and mv.is_v1_audio(voice.vocoder_config.audio)
    assert voice._renormalize is None
    voice.max_decoder_steps, voice.stop_threshold = 8, 2.0
    audio, rate = collect(voice.stream("Hi."))
    assert rate == 22050 and audio.shape == (8 * 2 * 256,)
    assert np.all(np.isfinite(audio))

    # The decoder on its own thread gives the same windows, and stopping early ends it.
    ids = voice.text_ids("Hello there, this is a longer sentence.")
    voice.max_decoder_steps = 40
    voice.parallel_vocoder = False
    sequential = list(voice.stream_ids(ids))
    voice.parallel_vocoder = True
    parallel = list(voice.stream_ids(ids))
    assert len(parallel) == len(sequential) >= 3
    assert all(np.array_equal(a, b) for a, b in zip(parallel, sequential, strict=True))
    windows = voice.stream_ids(ids)
    next(windows)
    windows.close()
    assert not any(t.name == "tacotron-decoder" for t in threading.enumerate())
