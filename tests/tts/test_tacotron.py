"""Tacotron2 + HiFi-GAN (random weights from Coqui configs): checkpoints, engines, streaming."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from voicebot.tts import coqui_checkpoint
from voicebot.tts.base import Synthesizer, collect
from voicebot.tts.tacotron import TacotronVoice

TEXT = "Hello world, this is a test."


def test_hifigan_onnx_matches_torch(tacotron_models, tmp_path):
    import onnxruntime as ort

    from voicebot.tts.tacotron_onnx import export_hifigan

    generator = tacotron_models[2]
    path = export_hifigan(generator, tmp_path / "hifigan.onnx")
    mel = torch.randn(1, 80, 57, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = generator.forward(mel).reshape(-1).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"mel": mel.numpy()})[0].reshape(-1)
    assert got.shape == expected.shape == (57 * 256,)
    assert np.abs(got - expected).max() < 1e-3


def test_tacotron2_loads_from_its_checkpoint_alone_and_synthesises(random_checkpoints,
                                                                    tmp_path):
    tts_dir, vocoder_dir = random_checkpoints
    lonely = tmp_path / "only-the-checkpoint.pth"
    shutil.copy(tts_dir / "model_file.pth", lonely)  # no config.json beside it
    voice = TacotronVoice.from_checkpoints(lonely, vocoder_dir, engine="torch", device="cpu",
                                           max_decoder_steps=12, stop_threshold=2.0)
    assert isinstance(voice, Synthesizer)
    audio, rate = collect(voice.stream("Hello there."))
    assert rate == 22050
    # 12 steps of 2 frames, plus HiFi-GAN's 5 padding frames at each end, 256 samples each.
    assert audio.shape == ((12 * 2 + 10) * 256,)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0


def test_streamed_audio_equals_coquis_whole_utterance(tacotron_models, tacotron_voices):
    """Windowed postnet + vocoder over the growing mel = Coqui's inference in one go."""
    from TTS.utils.audio import AudioProcessor

    model, config, generator, vocoder_config = tacotron_models
    model.decoder.max_decoder_steps = 30
    model.decoder.stop_threshold = 2.0
    voice = tacotron_voices["torch"]
    ids = voice.text_ids(TEXT)
    with torch.no_grad():
        mel = model.inference(torch.from_numpy(ids)[None])["model_outputs"][0].numpy()
        tts_ap, vocoder_ap = AudioProcessor(config.audio), AudioProcessor(vocoder_config.audio)
        vocoder_input = vocoder_ap.normalize(tts_ap.denormalize(mel.T))
        expected = generator.inference(torch.from_numpy(vocoder_input)[None]).reshape(-1)
    windows = list(voice.stream_ids(ids))
    assert len(windows) >= 2, "audio must leave before the utterance is fully decoded"
    streamed = np.concatenate(windows)
    assert streamed.shape == tuple(expected.shape)
    assert np.abs(streamed - expected.numpy()).max() < 1e-3


def test_onnx_engine_matches_torch_engine(tacotron_voices):
    ids = tacotron_voices["torch"].text_ids(TEXT)
    torch_audio = np.concatenate(list(tacotron_voices["torch"].stream_ids(ids)))
    onnx_audio = np.concatenate(list(tacotron_voices["onnx-fp32"].stream_ids(ids)))
    assert onnx_audio.shape == torch_audio.shape
    assert np.abs(onnx_audio - torch_audio).max() < 1e-3


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_quantised_decoder_stays_close_to_fp32(tacotron_voices, precision):
    """The quantized decoder is an approximation; with random weights it must stay near."""
    fp32, quantized = tacotron_voices["onnx-fp32"], tacotron_voices[f"onnx-{precision}"]
    assert quantized.backend.decoder_precision == precision
    ids = fp32.text_ids(TEXT)
    fp32.backend.start(ids)
    quantized.backend.start(ids)
    masks = (np.ones((1, 256), np.float32),) * 2
    memory = np.zeros(80, np.float32)
    exact, approx = [], []
    for _ in range(10):
        frames, _ = fp32.backend.step(memory, masks)
        frames_q, _ = quantized.backend.step(memory, masks)
        exact.append(frames)
        approx.append(frames_q)
        memory = frames[-80:]  # the same frame input to both; the states drift apart
    exact, approx = np.stack(exact).ravel(), np.stack(approx).ravel()
    correlation = np.corrcoef(exact, approx)[0, 1]
    print(f"{precision} vs fp32 decoder frames: correlation {correlation:.4f}")
    assert correlation > 0.95


def test_cpu_default_decoder_is_int4(random_checkpoints, export_models_dir, monkeypatch):
    from voicebot.paths import MODELS_ENV

    monkeypatch.setenv(MODELS_ENV, str(export_models_dir))  # reuses the session's export
    voice = TacotronVoice.from_checkpoints(*random_checkpoints, device="cpu",
                                           max_decoder_steps=4, stop_threshold=2.0)
    assert voice.backend.decoder_precision == "int4"
    audio, _ = collect(voice.stream("Hi."))
    assert audio.size > 0 and np.all(np.isfinite(audio))


@pytest.mark.parametrize("engine", ["torch", "onnx-int8", "onnx-int4"])
def test_bad_input(tacotron_voices, engine):
    voice = tacotron_voices[engine]
    for text in ("", "  ", "😀🎉"):
        assert list(voice.stream(text)) == []


def test_non_english_text_does_not_crash(tacotron_voices):
    audio, _ = collect(tacotron_voices["onnx-int4"].stream("Привет 日本語 ∑ and English."))
    assert audio.size > 0 and np.all(np.isfinite(audio))


def test_checkpoint_without_config_is_refused(random_checkpoints, tmp_path):
    state = torch.load(random_checkpoints[0] / "model_file.pth", weights_only=True)
    del state["config"]
    torch.save(state, tmp_path / "model_file.pth")
    with pytest.raises(coqui_checkpoint.CheckpointError, match="carries no config"):
        coqui_checkpoint.load_tacotron2(tmp_path / "model_file.pth")
    with pytest.raises(coqui_checkpoint.CheckpointError, match="not found"):
        coqui_checkpoint.load_tacotron2(tmp_path / "missing.pth")
    with pytest.raises(coqui_checkpoint.CheckpointError, match="not tacotron2"):
        coqui_checkpoint.load_tacotron2(random_checkpoints[1])


def test_first_audio_leaves_after_a_few_decoder_steps(tacotron_voices):
    """The first chunk is handed out while most decoder steps are still to come."""
    voice = tacotron_voices["onnx-int4"]
    steps = []
    real_step = voice.backend.step

    def counting_step(*args):
        steps.append(1)
        return real_step(*args)

    voice.backend.step = counting_step
    try:
        chunks = voice.stream("Hello there.")
        first = next(chunks)
        steps_before_first = len(steps)
        rest = list(chunks)
    finally:
        del voice.backend.step
    assert first.duration_s > 0 and rest
    assert steps_before_first < 20 < len(steps) == 30
    assert rest[-1].end_of_sentence and not first.end_of_sentence


def test_checkpoint_with_config_json_beside_it_loads(random_checkpoints, tmp_path):
    """Coqui's released models keep the config in config.json next to the weights."""
    state = torch.load(random_checkpoints[0] / "model_file.pth", weights_only=True)
    del state["config"]
    torch.save(state, tmp_path / "model_file.pth")
    shutil.copy(random_checkpoints[0] / "config.json", tmp_path / "config.json")
    model, config = coqui_checkpoint.load_tacotron2(tmp_path)  # the folder is enough
    assert config.model == "tacotron2" and model.decoder.r == 2
