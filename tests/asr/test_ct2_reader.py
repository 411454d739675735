"""The CTranslate2 reader on files written here, and the name mapping to transformers."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from voicebot.asr.ct2_reader import Ct2FormatError, read_ct2_model
from voicebot.asr.whisper_engine import converted_model_dir


def _string(value: str) -> bytes:
    raw = value.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _write(path, variables: dict[str, tuple[np.ndarray, int]], aliases=None, version=6):
    out = struct.pack("<I", version) + _string("TestSpec") + struct.pack("<I", 1)
    out += struct.pack("<I", len(variables))
    for name, (array, dtype_id) in variables.items():
        raw = array.tobytes()
        out += _string(name) + struct.pack("<B", array.ndim)
        out += b"".join(struct.pack("<I", d) for d in array.shape)
        out += struct.pack("<BI", dtype_id, len(raw)) + raw
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)


def test_reads_every_dtype_dequantises_and_follows_aliases(tmp_path):
    weight = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    scale = np.array([127.0, 63.5], dtype=np.float32)  # per row
    q = np.rint(weight * scale[:, None]).astype(np.int8)
    bf16 = (np.array([1.5, -2.0], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    _write(tmp_path / "model.bin", {
        "a/weight": (weight.astype(np.float16), 4),
        "b/weight": (q, 1),
        "b/weight_scale": (scale, 0),
        "c": (bf16, 5),
        "n": (np.array(6, dtype=np.int32), 3),
    }, aliases={"d/weight": "a/weight"})
    model = read_ct2_model(tmp_path / "model.bin")
    assert model.spec_name == "TestSpec"
    np.testing.assert_allclose(model.float_weight("a/weight"), weight)
    np.testing.assert_allclose(model.float_weight("b/weight"), weight, atol=0.02)
    np.testing.assert_allclose(model.get("c"), [1.5, -2.0])
    assert int(model.get("n")) == 6
    np.testing.assert_array_equal(model.get("d/weight"), model.get("a/weight"))


def test_rejects_truncated_and_unknown_versions(tmp_path):
    _write(tmp_path / "m.bin", {"x": (np.zeros(4, dtype=np.float32), 0)})
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[:-10])
    with pytest.raises(Ct2FormatError, match="truncated"):
        read_ct2_model(tmp_path / "cut.bin")
    _write(tmp_path / "v9.bin", {}, version=9)
    with pytest.raises(Ct2FormatError, match="version 9"):
        read_ct2_model(tmp_path / "v9.bin")


def test_converted_tiny_en_matches_transformers_layout():
    """Every parameter transformers expects is there with the right shape, nothing extra."""
    import torch
    from safetensors.numpy import load_file
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    folder = converted_model_dir("whisper-tiny-en")
    config = WhisperConfig.from_pretrained(folder)
    with torch.device("meta"):
        reference = WhisperForConditionalGeneration(config).state_dict()
    converted = load_file(str(folder / "model.safetensors"))
    expected = {k: tuple(v.shape) for k, v in reference.items() if k != "proj_out.weight"}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["no_timestamps_token_id"] == 50362 and gen["is_multilingual"] is False
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "preprocessor_config.json"):
        assert (folder / name).is_file()


def test_converted_folder_loads_with_whisper_processor(whisper_model, short_clip):
    import numpy as np
    from transformers import WhisperProcessor, WhisperTokenizer

    folder = converted_model_dir("whisper-tiny-en")
    processor = WhisperProcessor.from_pretrained(folder)
    slow = WhisperTokenizer.from_pretrained(folder)
    ids = slow(" Ten of clubs").input_ids
    assert ids[:2] == [50257, 50362] and ids[-1] == 50256
    assert slow.decode(ids, skip_special_tokens=True).strip() == "Ten of clubs"
    # Our log-mel (used for short windows) equals the feature extractor's on 30 s.
    padded = np.zeros(30 * 16000, dtype=np.float32)
    padded[:len(short_clip)] = short_clip
    reference = processor(padded, sampling_rate=16000, return_tensors="np").input_features[0]
    ours = whisper_model.log_mel(padded)  # the app's (ONNX) recogniser's numpy log-mel
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=2e-3)
