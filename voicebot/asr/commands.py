"""`voicebot transcribe` and `voicebot asr-eval`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from voicebot.asr.factory import ENGINES, create_recognizer, default_model_for, ngram_from_settings
from voicebot.asr.rescoring import TuningItem, Weights, rescore, tune_weights
from voicebot.asr.vosk_language import language_notice
from voicebot.settings import load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="recogniser (default: the one in settings)")
    parser.add_argument("--model", default=None,
                        help="model id, e.g. whisper-tiny-en, whisper-base, vosk-ko "
                             "(default: from settings)")
    parser.add_argument("--nbest", type=int, default=None,
                        help="hypotheses to produce and rescore (default: from settings)")
    parser.add_argument("--no-lm", action="store_true", help="do not rescore with the n-gram LM")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_transcribe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="audio files (any rate/channels soundfile reads; .raw = 16 kHz "
                             "int16)")
    parser.add_argument("--words", action="store_true",
                        help="word start/end times (Whisper: aligned from its attention)")
    _common(parser)


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True,
                        help="text file: AUDIO<TAB>REFERENCE per line; 'pocketsphinx-testdata' "
                             "uses Debian's pocketsphinx test recordings")
    parser.add_argument("--tune", action="store_true",
                        help="also grid-search the LM weight and word bonus on this manifest "
                             "and report the best (put them in settings to use them)")
    parser.add_argument("--adapter", default=None, metavar="DIR",
                        help="a recognition adapter folder (voicebot train asr): report WER "
                             "without and with it (voicebot.asr.adapt)")
    _common(parser)


def _setup(args):

    asr = load_settings().asr
    engine = args.engine or asr.engine
    model_id = args.model or (asr.model if engine == asr.engine else default_model_for(engine))
    nbest = args.nbest or asr.nbest
    recognizer = create_recognizer(engine, model_id, nbest=nbest, device=args.device,
                                   streaming=False,
                                   word_timings=getattr(args, "words", False))
    # The English n-gram LM only makes sense for English recognisers.
    lm = None if args.no_lm or engine == "vosk" else ngram_from_settings(asr)
    return recognizer, lm, Weights.from_settings(asr), nbest


def run_transcribe(args: argparse.Namespace) -> int:
    from voicebot.asr.audio_input import read_audio_file
    from voicebot.asr.evaluate import recognize_file
    from voicebot.audio.resample import ASR_RATE

    status = 0
    # Every file is read (and refused with its reason) before the model loads: a bad path
    # is answered in a second, not after the recogniser's load.
    clips = []
    for name in args.files:
        try:
            clips.append((name, read_audio_file(name)))
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"{name}: cannot transcribe: {exc}", file=sys.stderr)
            status = 1
    if not clips:
        return status
    recognizer, lm, weights, nbest = _setup(args)
    for name, audio in clips:
        hyps, seconds = recognize_file(recognizer, audio, nbest)
        result = rescore(hyps, lm, weights)
        notice = language_notice(result.hypotheses)  # speech not in the model's language
        if args.json:
            out = {"file": name, "audio_seconds": round(len(audio) / ASR_RATE, 3),
                   "decode_seconds": round(seconds, 3), **result.to_dict(),
                   "language_mismatch": notice or None}
            print(json.dumps(out, ensure_ascii=False))
        else:
            prefix = f"{name}: " if len(args.files) > 1 else ""
            if notice:
                print(f"{prefix}warning: {notice}", file=sys.stderr)
            print(f"{prefix}{result.text}")
            if args.words and result.best and result.best.words:
                print("  " + " ".join(f"{w.word}[{w.start:.2f}-{w.end:.2f}]"
                                      for w in result.best.words))
            if nbest > 1 and args.verbose:
                for h in result.hypotheses:
                    print(f"  {h.total_score:9.2f}  ac {h.acoustic_score:8.2f}  "
                          f"lm {h.lm_score if h.lm_score is not None else float('nan'):8.2f}"
                          f"  {h.text}")
    return status


def _tune(report, lm) -> dict:

    # Rescore once with LM weight 1 to fill lm_score; the grid search re-weighs it.
    items = [TuningItem(r.utterance.reference,
                        sorted(rescore(r.nbest, lm, Weights(1.0, 1.0, 0.0)).hypotheses,
                               key=lambda h: h.engine_rank))
             for r in report.results]
    best, wer = tune_weights(items, [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0],
                             [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    return {"lm_weight": best.lm, "word_bonus": best.word_bonus, "wer": round(wer, 4)}


def run_eval(args: argparse.Namespace) -> int:
    from voicebot.asr.evaluate import evaluate, pocketsphinx_testdata, read_manifest

    if args.manifest == "pocketsphinx-testdata":
        utterances = pocketsphinx_testdata()
        if not utterances:
            print("pocketsphinx-testdata is not installed (apt install pocketsphinx-testdata)",
                  file=sys.stderr)
            return 1
    else:
        path = Path(args.manifest)
        if not path.is_file():
            print(f"no manifest at {path}", file=sys.stderr)
            return 1
        utterances = read_manifest(path)
    missing = [str(u.audio) for u in utterances if not u.audio.is_file()]
    if missing:
        print("missing audio files: " + ", ".join(missing), file=sys.stderr)
        return 1
    if args.adapter:  # before/after comparison: voicebot.asr.adapt
        from voicebot.asr.adapt import eval_with_adapter

        print(json.dumps(eval_with_adapter(args, utterances, _setup),
                         indent=None if args.json else 2))
        return 0
    recognizer, lm, weights, nbest = _setup(args)
    report = evaluate(recognizer, utterances, lm, weights, nbest)
    summary = report.summary()
    if args.tune:
        summary["tuned"] = _tune(report, lm) if lm is not None else None
    if args.json:
        print(json.dumps(summary))
    else:
        for r in report.results:
            print(f"{r.utterance.audio.name}: {r.rescored.text}")
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0
