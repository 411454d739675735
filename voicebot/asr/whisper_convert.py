"""Turn a CTranslate2 Whisper model into a transformers ``WhisperForConditionalGeneration``.

The offline Whisper packages ship CTranslate2 weights only. CTranslate2 keeps the same
tensors as the original model with three differences undone here:
- self-attention q/k/v are fused into one ``linear_0`` (rows q, k, v) and cross-attention
  k/v into ``linear_1`` (rows k, v); Whisper's key projections have no bias, so the key
  rows of the fused bias are zero and are dropped;
- layer norms are called gamma/beta, feed-forward layers linear_0/linear_1;
- the output projection is an alias of the token embedding (tied in transformers too).
Int8/int16 weights are dequantised (see ``ct2_reader``); the result is saved as float16
safetensors (the precision the packages ship), and loaded as float32 on CPU.

Besides the weights the output folder gets what ``WhisperProcessor`` needs: config.json,
generation_config.json, preprocessor_config.json, tokenizer.json + tokenizer_config.json,
and vocab.json + merges.txt for the slow ``WhisperTokenizer``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np

from voicebot.asr.ct2_reader import Ct2FormatError, Ct2Model, read_ct2_model
from voicebot.audio.resample import ASR_RATE

log = logging.getLogger(__name__)

# Bump when the output layout changes so cached conversions are redone.
CONVERTER_VERSION = 1

N_FFT = 400
HOP_LENGTH = 160
CHUNK_SECONDS = 30


def _layer_count(model: Ct2Model, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    if not indices:
        raise Ct2FormatError(f"no {prefix} layers in the CTranslate2 model")
    return max(indices) + 1


def _scalar_int(model: Ct2Model, name: str) -> int:
    return int(np.asarray(model.get(name)).reshape(-1)[0])


def _split_rows(weight: np.ndarray, parts: int) -> list[np.ndarray]:
    if weight.shape[0] % parts:
        raise Ct2FormatError(f"fused weight with {weight.shape[0]} rows is not {parts} parts")
    return np.split(weight, parts, axis=0)


def _attention(model: Ct2Model, src: str, dst: str, cross: bool) -> dict[str, np.ndarray]:
    w = model.float_weight
    out: dict[str, np.ndarray] = {}
    if cross:
        q_w, q_b = w(f"{src}/linear_0/weight"), w(f"{src}/linear_0/bias")
        k_w, v_w = _split_rows(w(f"{src}/linear_1/weight"), 2)
        _, v_b = _split_rows(w(f"{src}/linear_1/bias"), 2)
        o = "linear_2"
    else:
        q_w, k_w, v_w = _split_rows(w(f"{src}/linear_0/weight"), 3)
        q_b, _, v_b = _split_rows(w(f"{src}/linear_0/bias"), 3)
        o = "linear_1"
    out[f"{dst}.q_proj.weight"], out[f"{dst}.q_proj.bias"] = q_w, q_b
    out[f"{dst}.k_proj.weight"] = k_w
    out[f"{dst}.v_proj.weight"], out[f"{dst}.v_proj.bias"] = v_w, v_b
    out[f"{dst}.out_proj.weight"] = w(f"{src}/{o}/weight")
    out[f"{dst}.out_proj.bias"] = w(f"{src}/{o}/bias")
    return out


def _norm(model: Ct2Model, src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": model.float_weight(f"{src}/gamma"),
            f"{dst}.bias": model.float_weight(f"{src}/beta")}


def _ffn(model: Ct2Model, src: str, dst: str) -> dict[str, np.ndarray]:
    w = model.float_weight
    return {f"{dst}.fc1.weight": w(f"{src}/linear_0/weight"),
            f"{dst}.fc1.bias": w(f"{src}/linear_0/bias"),
            f"{dst}.fc2.weight": w(f"{src}/linear_1/weight"),
            f"{dst}.fc2.bias": w(f"{src}/linear_1/bias")}


def hf_state_dict(model: Ct2Model) -> dict[str, np.ndarray]:
    """transformers parameter name -> float32 array."""
    if model.spec_name != "WhisperSpec":
        raise Ct2FormatError(f"expected a WhisperSpec model, got {model.spec_name}")
    w = model.float_weight
    sd: dict[str, np.ndarray] = {}
    enc, dec = "model.encoder", "model.decoder"
    for i in (1, 2):
        sd[f"{enc}.conv{i}.weight"] = w(f"encoder/conv{i}/weight")
        sd[f"{enc}.conv{i}.bias"] = w(f"encoder/conv{i}/bias")
    sd[f"{enc}.embed_positions.weight"] = w("encoder/position_encodings/encodings")
    for i in range(_layer_count(model, "encoder")):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        sd.update(_attention(model, f"{src}/self_attention", f"{dst}.self_attn", cross=False))
        sd.update(_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_ffn(model, f"{src}/ffn", dst))
        sd.update(_norm(model, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm"))
    sd.update(_norm(model, "encoder/layer_norm", f"{enc}.layer_norm"))
    sd[f"{dec}.embed_tokens.weight"] = w("decoder/embeddings/weight")
    sd[f"{dec}.embed_positions.weight"] = w("decoder/position_encodings/encodings")
    for i in range(_layer_count(model, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        sd.update(_attention(model, f"{src}/self_attention", f"{dst}.self_attn", cross=False))
        sd.update(_norm(model, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        sd.update(_attention(model, f"{src}/attention", f"{dst}.encoder_attn", cross=True))
        sd.update(_norm(model, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm"))
        sd.update(_ffn(model, f"{src}/ffn", dst))
        sd.update(_norm(model, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm"))
    sd.update(_norm(model, "decoder/layer_norm", f"{dec}.layer_norm"))
    # proj_out is tied to the embedding; transformers re-ties it on load.
    return sd


def _special_ids(tokenizer: dict) -> dict[str, int]:
    return {t["content"]: t["id"] for t in tokenizer.get("added_tokens", [])}


def whisper_config(model: Ct2Model, ct2_config: dict, special: dict[str, int]) -> dict:
    emb = model.get("decoder/embeddings/weight")
    vocab_size, d_model = emb.shape
    eot = special["<|endoftext|>"]
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "vocab_size": int(vocab_size),
        "num_mel_bins": int(model.get("encoder/conv1/weight").shape[1]),
        "d_model": int(d_model),
        "encoder_layers": _layer_count(model, "encoder"),
        "decoder_layers": _layer_count(model, "decoder"),
        "encoder_attention_heads": _scalar_int(model, "encoder/num_heads"),
        "decoder_attention_heads": _scalar_int(model, "decoder/num_heads"),
        "encoder_ffn_dim": int(model.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
        "decoder_ffn_dim": int(model.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
        "max_source_positions": int(model.get("encoder/position_encodings/encodings").shape[0]),
        "max_target_positions": int(model.get("decoder/position_encodings/encodings").shape[0]),
        "activation_function": "gelu",
        "scale_embedding": False,
        "tie_word_embeddings": True,
        "decoder_start_token_id": special["<|startoftranscript|>"],
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "suppress_tokens": list(ct2_config.get("suppress_ids", [])),
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin", [220, eot])),
        "torch_dtype": "float16",
    }


def generation_config(config: dict, ct2_config: dict, special: dict[str, int]) -> dict:
    languages = {tok: i for tok, i in special.items()
                 if re.fullmatch(r"<\|[a-z]{2,3}\|>", tok) and i in ct2_config.get("lang_ids", [])}
    # English-only checkpoints have one token fewer than the multilingual ones.
    multilingual = config["vocab_size"] >= 51865
    gen = {
        "decoder_start_token_id": config["decoder_start_token_id"],
        "bos_token_id": config["bos_token_id"],
        "eos_token_id": config["eos_token_id"],
        "pad_token_id": config["pad_token_id"],
        "max_length": config["max_target_positions"],
        "no_timestamps_token_id": special["<|notimestamps|>"],
        "prev_sot_token_id": special.get("<|startofprev|>"),
        "suppress_tokens": config["suppress_tokens"],
        "begin_suppress_tokens": config["begin_suppress_tokens"],
        "alignment_heads": ct2_config.get("alignment_heads", []),
        "is_multilingual": multilingual,
        "return_timestamps": False,
    }
    if multilingual:
        gen["lang_to_id"] = languages
        gen["task_to_id"] = {"transcribe": special["<|transcribe|>"],
                             "translate": special["<|translate|>"]}
    return gen


def _bytes_to_unicode_vocab_files(tokenizer: dict, out_dir: Path) -> None:
    """vocab.json and merges.txt for the slow tokenizer, taken from tokenizer.json."""
    bpe = tokenizer["model"]
    (out_dir / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False),
                                        encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]]
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                        encoding="utf-8")


def convert_ct2_whisper(src_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a transformers Whisper model folder converted from a CTranslate2 one."""
    from safetensors.numpy import save_file

    src_dir, out_dir = Path(src_dir), Path(out_dir)
    for required in ("model.bin", "config.json", "tokenizer.json"):
        if not (src_dir / required).is_file():
            raise FileNotFoundError(f"{src_dir} has no {required}: not a CTranslate2 Whisper "
                                    "model folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    model = read_ct2_model(src_dir / "model.bin")
    ct2_config = json.loads((src_dir / "config.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((src_dir / "tokenizer.json").read_text(encoding="utf-8"))
    special = _special_ids(tokenizer)

    state = {k: np.ascontiguousarray(v.astype(np.float16)) for k, v in hf_state_dict(model).items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config = whisper_config(model, ct2_config, special)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (out_dir / "generation_config.json").write_text(
        json.dumps(generation_config(config, ct2_config, special), indent=2), encoding="utf-8")
    (out_dir / "preprocessor_config.json").write_text(json.dumps({
        "feature_extractor_type": "WhisperFeatureExtractor",
        "processor_class": "WhisperProcessor",
        "feature_size": config["num_mel_bins"],
        "sampling_rate": ASR_RATE,
        "hop_length": HOP_LENGTH,
        "n_fft": N_FFT,
        "chunk_length": CHUNK_SECONDS,
        "n_samples": ASR_RATE * CHUNK_SECONDS,
        "nb_max_frames": ASR_RATE * CHUNK_SECONDS // HOP_LENGTH,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
    }, indent=2), encoding="utf-8")
    shutil.copyfile(src_dir / "tokenizer.json", out_dir / "tokenizer.json")
    _bytes_to_unicode_vocab_files(tokenizer, out_dir)
    eot = "<|endoftext|>"
    (out_dir / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "WhisperTokenizer",
        "processor_class": "WhisperProcessor",
        "model_max_length": 1024,
        "bos_token": eot, "eos_token": eot, "unk_token": eot, "pad_token": eot,
        "add_prefix_space": False,
        "errors": "replace",
    }, indent=2), encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": eot, "eos_token": eot, "unk_token": eot, "pad_token": eot}, indent=2),
        encoding="utf-8")
    log.info("converted %s (CTranslate2 %s) to transformers at %s", src_dir,
             model.spec_name, out_dir)
    return out_dir
