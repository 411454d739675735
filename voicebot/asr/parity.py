"""Accuracy of every Whisper path the app uses beside plain fp32 transformers, per set.

``python -m voicebot.asr.parity [--sets real-commands ...] [--json]`` builds the test
sets (``voicebot.asr.testsets``) and reports, per set, WER and repeated-word insertions
for:
- ``fp32_greedy_hf`` / ``fp32_beam5_hf``: the converted model in float32 with plain
  ``transformers`` ``generate()`` on Whisper's 30 s window: the reference;
- ``fp32_greedy``: our decoding loop, float32 weights, speech-length encoding;
- ``int8_greedy``: the same with torch's int8 weights (the CPU default until 2026-12-07);
- ``onnx_greedy``: the shipped CPU model, the ONNX export with 8-bit weights
  (``whisper_onnx``; ``bench asr``'s rtf_final);
- ``app_final``: the app's recogniser (the ONNX model) on a whole clip, 5-best, rescored
  with the shipped n-gram LM and weights (``voicebot transcribe``);
- ``app_streaming``: the same fed in 20 ms chunks with partial decodes, the committed
  prefix forced, the final decoded from the partial's encoding (the conversation path).
``--old-encoder`` runs the torch paths with the speech-only encoder of before 2026-12-06.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from voicebot.asr.factory import ngram_from_settings
from voicebot.asr.rescoring import Weights, rescore
from voicebot.asr.wer import count_errors
from voicebot.audio.resample import ASR_RATE
from voicebot.settings import AsrSettings
from voicebot.text.scoring import words_for_scoring

CHUNK = 320  # 20 ms at 16 kHz, what the app's capture delivers
PATHS = ("fp32_greedy_hf", "fp32_beam5_hf", "fp32_greedy", "int8_greedy", "onnx_greedy",
         "app_final", "app_streaming")


def repetition_insertions(reference: str, hypothesis: str) -> int:
    """Immediately repeated words or spans in the hypothesis beyond the reference's."""

    def repeats(words: list[str]) -> int:
        count = 0
        for size in (1, 2, 3):
            count += sum(words[i:i + size] == words[i + size:i + 2 * size]
                         for i in range(len(words) - 2 * size + 1))
        return count

    return max(0, repeats(words_for_scoring(hypothesis)) - repeats(words_for_scoring(reference)))


class HfReference:
    """The converted checkpoint in float32, decoded by ``transformers`` itself."""

    def __init__(self, model_dir: Path):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.processor = WhisperProcessor.from_pretrained(model_dir)
        self.model = WhisperForConditionalGeneration.from_pretrained(
            model_dir, dtype=torch.float32).eval()

    def __call__(self, audio: np.ndarray, beams: int) -> str:
        import torch

        features = self.processor(audio, sampling_rate=ASR_RATE, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(features.input_features, num_beams=beams,
                                      max_new_tokens=128)
        return self.processor.batch_decode(out, skip_special_tokens=True)[0].strip()


def _recognize(recognizer, audio: np.ndarray, streaming: bool, lm, weights) -> str:

    if streaming:
        for start in range(0, len(audio), CHUNK):
            recognizer.feed(audio[start:start + CHUNK])
    else:
        recognizer.feed(audio)
    return rescore(recognizer.finish(5), lm, weights).text


def evaluate_sets(manifests: dict[str, Path], paths=PATHS, old_encoder: bool = False,
                  log=None, context_pool: int | None = None) -> dict:
    import torch

    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import read_manifest
    from voicebot.asr.whisper_engine import WhisperRecognizer, converted_model_dir, load_whisper
    from voicebot.asr.whisper_model import WhisperModel

    torch.set_num_threads(1)
    model_dir = converted_model_dir("whisper-tiny-en")
    # (Passed only when asked, so this file also runs against older checkouts.)
    options: dict = {"encoder_context": False} if old_encoder else {}
    if context_pool is not None:
        options["context_pool"] = context_pool
    hf = HfReference(model_dir) if any(p.endswith("_hf") for p in paths) else None
    fp32 = WhisperModel(model_dir, cpu_int8="none", **options)
    int8 = WhisperModel(model_dir, **options)
    shipped = load_whisper("whisper-tiny-en", "cpu")
    settings = AsrSettings()
    lm, weights = ngram_from_settings(settings), Weights.from_settings(settings)
    final = WhisperRecognizer(shipped, nbest=5, streaming=False)
    stream = WhisperRecognizer(shipped, nbest=5, streaming=True)
    decoders = {
        "fp32_greedy_hf": lambda a: hf(a, 1),
        "fp32_beam5_hf": lambda a: hf(a, 5),
        "fp32_greedy": lambda a: fp32.text(fp32.decode(a).sequences[0].tokens),
        "int8_greedy": lambda a: int8.text(int8.decode(a).sequences[0].tokens),
        "onnx_greedy": lambda a: shipped.text(shipped.decode(a).sequences[0].tokens),
        "app_final": lambda a: _recognize(final, a, False, lm, weights),
        "app_streaming": lambda a: _recognize(stream, a, True, lm, weights),
    }
    report: dict = {"old_encoder": old_encoder, "context_pool": context_pool, "sets": {}}
    for name, manifest in manifests.items():
        utterances = read_manifest(manifest)
        rows = {p: {"errors": 0, "repeats": 0, "seconds": 0.0} for p in paths}
        words = 0
        examples = []
        for utt in utterances:
            audio = read_audio_file(utt.audio)
            words += count_errors(utt.reference, "").ref_words
            texts = {}
            for path in paths:
                started = time.perf_counter()
                texts[path] = decoders[path](audio)
                rows[path]["seconds"] += time.perf_counter() - started
                rows[path]["errors"] += count_errors(utt.reference, texts[path]).errors
                rows[path]["repeats"] += repetition_insertions(utt.reference, texts[path])
            if any(count_errors(utt.reference, t).errors for t in texts.values()):
                examples.append({"ref": utt.reference, **texts})
        audio_seconds = sum(len(read_audio_file(u.audio)) for u in utterances) / ASR_RATE
        report["sets"][name] = {
            "n_utts": len(utterances), "n_words": words,
            **{p: {"wer": round(r["errors"] / max(1, words), 4), "errors": r["errors"],
                   "repeats": r["repeats"], "rtf": round(r["seconds"] / audio_seconds, 3)}
               for p, r in rows.items()},
            "differences": examples,
        }
        if log:
            log(name, {p: report["sets"][name][p]["wer"] for p in paths})
    return report


def table(report: dict, paths=PATHS) -> str:
    lines = ["set | words | " + " | ".join(paths), "---|---|" + "---|" * len(paths)]
    for name, row in report["sets"].items():
        cells = [f"{row[p]['wer']:.3f} ({row[p]['repeats']})" for p in paths]
        lines.append(f"{name} | {row['n_words']} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from voicebot.asr.testsets import build

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=None, help="set names (default: all)")
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=PATHS)
    parser.add_argument("--out", type=Path, default=None, help="test-set folder")
    parser.add_argument("--old-encoder", action="store_true",
                        help="the speech-only encoder of before 2026-12-06")
    parser.add_argument("--context-pool", type=int, default=None,
                        help="silent positions per pooled encoder key (1: none; default: "
                             "the model's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    manifests = build(args.out, sets=args.sets)
    report = evaluate_sets(manifests, tuple(args.paths), args.old_encoder,
                           log=lambda *a: print(*a, file=sys.stderr, flush=True),
                           context_pool=args.context_pool)
    print(json.dumps(report) if args.json else table(report, tuple(args.paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
