"""The CPU recogniser on ONNX Runtime against the same weights on torch, on real speech.

The ONNX model (``whisper_onnx``) is what the app runs on the CPU; ``WhisperModel`` on
torch is the reference it replaced. Same log-mel, same tokenizer output, transcripts as
accurate as the float32 model's, word timings where torch puts them, and no torch or
transformers in a process that only recognises speech.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from voicebot.asr.wer import count_errors

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' own


@pytest.fixture(scope="module")
def torch_fp32():
    from voicebot.asr.whisper_engine import converted_model_dir
    from voicebot.asr.whisper_model import WhisperModel

    return WhisperModel(converted_model_dir("whisper-tiny-en"), device="cpu", cpu_int8="none")


def test_log_mel_and_filterbank_match_transformers(whisper_model, torch_fp32, clips):
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(torch_fp32.model_dir)
    assert np.allclose(whisper_model.mel_filters, extractor.mel_filters.T, atol=1e-6)
    for _, audio in clips[:3]:
        ours = whisper_model.log_mel(audio)
        reference = torch_fp32.log_mel(audio).numpy()
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() < 1e-3


def test_tokenizer_text_matches_transformers(whisper_model, torch_fp32, clips):
    reference = torch_fp32.tokenizer
    for _, audio in clips[:6]:
        tokens = torch_fp32.decode(audio, beam_size=3, nbest=3).sequences[0].tokens
        assert whisper_model.text(tokens) == torch_fp32.text(tokens)
        with_specials = whisper_model.prompt() + tokens + [whisper_model.eot]
        assert whisper_model.text(with_specials) == torch_fp32.text(with_specials)
    assert whisper_model.tokenizer.get_vocab() == reference.get_vocab()
    assert whisper_model.no_speech == torch_fp32.no_speech
    assert whisper_model.prompt() == torch_fp32.prompt()


def test_transcripts_as_accurate_as_float32_torch(whisper_model, torch_fp32, clips):
    """Greedy and 5-beam over every pocketsphinx recording: ONNX (8-bit weights) makes
    at most one error more than the float32 torch model per 100 words."""
    errors = {"onnx_greedy": 0, "fp32_greedy": 0, "onnx_beam": 0, "fp32_beam": 0}
    words = 0
    for utterance, audio in clips:
        words += count_errors(utterance.reference, "").ref_words
        for name, model in (("onnx", whisper_model), ("fp32", torch_fp32)):
            for kind, beam in (("greedy", 1), ("beam", 5)):
                result = model.decode(audio, beam_size=beam, nbest=5)
                errors[f"{name}_{kind}"] += count_errors(
                    utterance.reference, model.text(result.sequences[0].tokens)).errors
    for kind in ("greedy", "beam"):
        assert errors[f"onnx_{kind}"] <= errors[f"fp32_{kind}"] + max(1, words // 100), errors


def test_scores_and_no_speech_agree_with_torch(whisper_model, torch_fp32, short_clip):
    ours = whisper_model.decode(short_clip, beam_size=5, nbest=5)
    reference = torch_fp32.decode(short_clip, beam_size=5, nbest=5)
    assert ours.sequences[0].tokens == reference.sequences[0].tokens
    best, ref_best = ours.sequences[0], reference.sequences[0]
    # Mean log-probability per token within 0.05 nats of float32 (8-bit weights).
    assert abs(best.logprob / best.n_decoded - ref_best.logprob / ref_best.n_decoded) < 0.05
    assert abs(ours.no_speech_prob - reference.no_speech_prob) < 0.02
    silence = whisper_model.decode(np.zeros(16000, np.float32))
    assert silence.no_speech_prob > 0.5


@pytest.fixture(scope="module")
def onnx_fp32(tmp_path_factory):
    """The same graphs with float32 weights: they must compute what torch computes."""
    from voicebot.asr.whisper_engine import converted_model_dir
    from voicebot.asr.whisper_onnx import OnnxWhisperModel
    from voicebot.asr.whisper_onnx_export import export_whisper

    out = tmp_path_factory.mktemp("whisper-onnx-fp32")
    export_whisper(converted_model_dir("whisper-tiny-en"), out, quantize=False)
    return OnnxWhisperModel(out)


def test_float32_graphs_compute_what_torch_computes(onnx_fp32, torch_fp32, clips):
    """Encoder states (with the silence context), cross-attention keys and the decoded
    scores of the float32 export equal torch's to float rounding."""
    for _, audio in clips[:3]:
        ours, reference = onnx_fp32.encode(audio), torch_fp32.encode(audio)
        assert np.abs(ours.speech - reference.speech.numpy()).max() < 1e-3
        for (k, v), (k_ref, v_ref) in zip(ours.cross_kv, reference.cross_kv, strict=True):
            assert np.abs(k - k_ref.numpy()).max() < 1e-3
            assert np.abs(v - v_ref.numpy()).max() < 1e-3
        result = onnx_fp32.decode(audio, beam_size=5, nbest=5, encoded=ours)
        expected = torch_fp32.decode(audio, beam_size=5, nbest=5, encoded=reference)
        assert [s.tokens for s in result.sequences] == [s.tokens for s in expected.sequences]
        for seq, ref in zip(result.sequences, expected.sequences, strict=True):
            assert seq.logprob == pytest.approx(ref.logprob, abs=1e-3)


def test_forced_prefix_scores_the_same_as_decoding_it(onnx_fp32, whisper_model, short_clip):
    """The prompt and a forced prefix go through the decoder in one call (causal mask,
    positions); their scores equal token-by-token decoding exactly in float32, and within
    what 8-bit activations round differently in the shipped model."""
    for model, tolerance in ((onnx_fp32, 1e-4), (whisper_model, 0.15)):
        free = model.decode(short_clip).sequences[0]
        for k in (1, 3, len(free.tokens)):
            forced = model.decode(short_clip, prefix=free.tokens[:k]).sequences[0]
            assert forced.tokens == free.tokens
            assert forced.logprob == pytest.approx(free.logprob, abs=tolerance)


def test_word_timings_agree_with_torch(whisper_model, torch_fp32, clips):
    from voicebot.asr.whisper_timing import word_timings

    _, audio = max(clips, key=lambda c: len(c[1]))
    tokens = torch_fp32.decode(audio).sequences[0].tokens
    prompt = torch_fp32.prompt()
    ours = word_timings(whisper_model, whisper_model.encode(audio), tokens, prompt)
    reference = word_timings(torch_fp32, torch_fp32.encode(audio), tokens, prompt)
    assert [w.word for w in ours] == [w.word for w in reference]
    starts = np.array([w.start for w in ours]) - np.array([w.start for w in reference])
    assert np.median(np.abs(starts)) <= 0.04 and np.abs(starts).max() <= 0.2, starts


def test_recognising_speech_imports_neither_torch_nor_transformers(utterances):
    audio = str(utterances[0].audio)
    script = (
        "import json, sys\n"
        "from voicebot.asr.audio_input import read_audio_file\n"
        "from voicebot.asr.factory import create_recognizer\n"
        "r = create_recognizer('whisper', 'whisper-tiny-en', device='auto', threads=2)\n"
        f"r.feed(read_audio_file({audio!r}))\n"
        "text = r.finish(5)[0].text\n"
        "print(json.dumps({'text': text, 'torch': 'torch' in sys.modules,\n"
        "                  'transformers': 'transformers' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False and result["transformers"] is False
    assert count_errors(utterances[0].reference, result["text"]).errors <= 2, result
