"""Every embedded default resolves offline and its files really load and run."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from voicebot.models import resolve
from voicebot.models.catalog import load_catalog
from voicebot.models.store import ModelStore

DEFAULT_IDS = ["whisper-tiny-en", "smollm2-135m-instruct", "piper-en-us-joe-medium",
               "silero-vad", "pocketsphinx-en-us-lm", "vosk-ko", "hifigan-v1-universal",
               "resemblyzer-ge2e", "smart-turn-v3.2"]


def test_catalog_defaults_are_the_embedded_models():
    defaults = [e for e in load_catalog() if e.default]
    assert sorted(e.id for e in defaults) == sorted(DEFAULT_IDS)
    assert all(e.embedded for e in defaults)


@pytest.mark.parametrize("model_id", DEFAULT_IDS)
def test_default_resolves_and_verifies(model_id):
    path = resolve(model_id, converted=False)
    assert path.exists()
    report = ModelStore().verify(model_id)
    assert report["ok"], report["problems"]


def test_doctor_rows_have_the_promised_fields():
    rows = ModelStore().status()
    for row in rows:
        assert {"id", "kind", "installed", "default", "source", "size_mb", "path"} <= set(row)
    assert all(r["installed"] for r in rows if r["default"])


def _ct2_variable_names(model_bin):
    """Walk a CTranslate2 model.bin (format version 6) variable by variable."""
    with open(model_bin, "rb") as f:
        data = f.read()
    (version,) = struct.unpack_from("<I", data, 0)
    assert version == 6
    pos = 4
    (n,) = struct.unpack_from("<H", data, pos)
    spec = data[pos + 2:pos + 2 + n].rstrip(b"\0").decode()
    pos += 2 + n + 4  # spec name, spec revision
    (count,) = struct.unpack_from("<I", data, pos)
    pos += 4
    names = []
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, pos)
        names.append(data[pos + 2:pos + 2 + n].rstrip(b"\0").decode())
        pos += 2 + n
        rank = data[pos]
        pos += 1 + 4 * rank + 1  # rank, dims, dtype
        (nbytes,) = struct.unpack_from("<I", data, pos)
        pos += 4 + nbytes
    assert pos <= len(data)
    return spec, names


def test_whisper_tiny_files_are_complete_and_readable():
    from tokenizers import Tokenizer

    folder = resolve("whisper-tiny-en")
    spec, names = _ct2_variable_names(folder / "model.bin")
    assert spec == "WhisperSpec"
    assert any(name.startswith("encoder/") for name in names)
    assert any(name.startswith("decoder/") for name in names)
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tokenizer.decode(tokenizer.encode(" hello world").ids).strip() == "hello world"
    assert "alignment_heads" in json.loads((folder / "config.json").read_text())


def test_smollm2_converted_model_generates_with_transformers():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve("smollm2-135m-instruct")
    assert (folder / "model.safetensors").is_file()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Say hello."}],
                                        add_generation_prompt=True, return_tensors="pt")
    ids = ids if torch.is_tensor(ids) else ids["input_ids"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=6, do_sample=False)
    finally:
        torch.set_num_threads(threads)
    reply = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert out.shape[1] > ids.shape[1] and reply.strip()


def _cpu_session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_piper_voice_synthesises_audio_from_phoneme_ids():
    onnx_file = resolve("piper-en-us-joe-medium")
    config = json.loads(onnx_file.with_name(onnx_file.name + ".json").read_text())
    id_map = config["phoneme_id_map"]
    # "həloʊ" framed as Piper does: ^ then each phoneme followed by the pad _, then $.
    ids = list(id_map["^"])
    for phoneme in "həloʊ":
        ids += id_map[phoneme] + id_map["_"]
    ids += id_map["$"]
    inference = config["inference"]
    session = _cpu_session(onnx_file)
    audio = session.run(None, {
        "input": np.array([ids], dtype=np.int64),
        "input_lengths": np.array([len(ids)], dtype=np.int64),
        "scales": np.array([inference["noise_scale"], inference["length_scale"],
                            inference["noise_w"]], dtype=np.float32),
    })[0].squeeze()
    assert audio.size > config["audio"]["sample_rate"] * 0.1  # at least 0.1 s of sound
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01


def test_silero_vad_runs_on_a_frame():
    session = _cpu_session(resolve("silero-vad"))
    state = np.zeros((2, 1, 128), dtype=np.float32)
    frame = np.zeros((1, 512), dtype=np.float32)
    prob, state = session.run(None, {"input": frame, "state": state,
                                     "sr": np.array(16000, dtype=np.int64)})
    assert 0.0 <= float(prob.squeeze()) < 0.5  # silence is not speech
    assert state.shape == (2, 1, 128)


def test_pocketsphinx_lm_loads_and_prefers_real_english():
    from pocketsphinx import NGramModel

    folder = resolve("pocketsphinx-en-us-lm")
    lm = NGramModel.readfile(str(folder / "en-us.lm.bin"))
    assert lm.size() == 3  # a trigram model
    # prob([word, *history most recent first]): "one of the" beats "the of one".
    assert lm.prob(["the", "of", "one"]) > lm.prob(["one", "of", "the"])
    words = {line.split()[0] for line in (folder / "cmudict-en-us.dict").open()
             if line.strip()}
    assert "hello" in words


def test_vosk_korean_model_loads():
    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(resolve("vosk-ko")))
    recognizer = vosk.KaldiRecognizer(model, 16000)
    recognizer.AcceptWaveform(np.zeros(1600, dtype=np.int16).tobytes())
    assert "text" in json.loads(recognizer.FinalResult())


def test_doctor_models_check_passes():
    from voicebot.doctor import check_models

    report = check_models()
    assert report["ok"], report.get("error")
