"""The adapter at load time: merged before the 8-bit export, a no-op when untrained, used
by asr-eval and switched by the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebot.asr.adapt import settings_adapter
from voicebot.asr.audio_input import read_audio_file
from voicebot.asr.evaluate import Utterance, pocketsphinx_testdata, write_manifest
from voicebot.asr.lora import (
    AdapterError,
    add_lora,
    load_whisper_with_adapter,
    merged_model_dir,
    read_adapter,
    save_adapter,
)
from voicebot.settings import Settings

MODEL = "whisper-tiny-en"


@pytest.fixture(scope="module")
def clip(dataset):
    # A held-out take (index 9): "eight of spades four of clubs seven of hearts".
    return read_audio_file(pocketsphinx_testdata()[9].audio)


@pytest.fixture(scope="module")
def zero_step_adapter(tmp_path_factory):
    from transformers import WhisperForConditionalGeneration

    from voicebot.asr.whisper_engine import converted_model_dir

    model = WhisperForConditionalGeneration.from_pretrained(converted_model_dir(MODEL))
    return save_adapter(add_lora(model, rank=4), tmp_path_factory.mktemp("zero") / "adapter",
                        MODEL, steps=0)


def _scores(model, audio):
    result = model.decode(audio, beam_size=3, nbest=3)
    return [(s.tokens, s.logprob) for s in result.sequences], result.no_speech_prob


def test_untrained_adapter_leaves_the_output_identical(zero_step_adapter, clip):
    base = load_whisper_with_adapter(MODEL, None, "cpu")
    merged = load_whisper_with_adapter(MODEL, zero_step_adapter, "cpu")
    assert merged is not base
    # On the CPU the merged weights run as their ONNX export, cached in the adapter folder.
    assert Path(zero_step_adapter) in merged.model_dir.parents
    assert _export_source(merged) == merged_model_dir(zero_step_adapter) / "model.safetensors"
    # Exactly equal: a zero LoRA update merges to the same floats, quantized the same.
    assert _scores(merged, clip) == _scores(base, clip)


def test_trained_adapter_changes_the_output(adaptation_run, clip):
    out, _, _ = adaptation_run
    base = load_whisper_with_adapter(MODEL, None, "cpu")
    adapted = load_whisper_with_adapter(MODEL, out / "adapter", "cpu")
    (base_seqs, base_ns), (adapted_seqs, adapted_ns) = _scores(base, clip), _scores(adapted, clip)
    differences = [abs(a[1] - b[1]) for a, b in zip(base_seqs, adapted_seqs, strict=False)]
    assert max(differences) > 1e-3 or base_seqs[0][0] != adapted_seqs[0][0]
    assert base_ns != adapted_ns
    # The app's own (8-bit ONNX) model is built from the merged weights.
    assert _export_source(adapted) == merged_model_dir(out / "adapter") / "model.safetensors"


def _export_source(model) -> Path:
    """The weights file an ONNX recogniser was exported from (its conversion marker)."""
    from voicebot.models.conversions import read_marker

    sources = read_marker(model.model_dir)["sources"]
    return Path(next(s["path"] for s in sources if s["path"].endswith(".safetensors")))


def test_asr_eval_reports_wer_before_and_after(adaptation_run, tmp_path, capsys):
    from voicebot.cli import main

    out, _, _ = adaptation_run
    held_out = [pocketsphinx_testdata()[i] for i in (4, 9)]
    manifest = write_manifest([Utterance(u.audio, u.reference) for u in held_out],
                              tmp_path / "heldout.tsv")
    code = main(["asr-eval", "--manifest", str(manifest), "--adapter", str(out / "adapter"),
                 "--json", "--no-lm", "--nbest", "1", "--device", "cpu"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["base_model"] == MODEL
    for side in ("before", "after"):
        assert report[side]["n_utts"] == 2 and report[side]["n_words"] == 17
        assert 0 <= report[side]["wer"] <= 1.5
    assert [t["reference"] for t in report["texts"]] == [u.reference for u in held_out]


def test_settings_switch_and_stale_adapters(zero_step_adapter, tmp_path):
    asr = Settings().asr
    assert settings_adapter(asr) == ""  # no field / empty: off
    asr.adapter = str(zero_step_adapter)
    assert settings_adapter(asr) == str(zero_step_adapter)
    asr.model = "whisper-base"  # trained on tiny.en: never applied to another model
    assert settings_adapter(asr) == ""
    with pytest.raises(AdapterError, match="trained on whisper-tiny-en"):
        merged_model_dir(zero_step_adapter, "whisper-base")
    asr.model, asr.adapter = MODEL, str(tmp_path)  # not an adapter folder
    assert settings_adapter(asr) == ""
    with pytest.raises(AdapterError, match="not a recognition adapter"):
        read_adapter(tmp_path)
