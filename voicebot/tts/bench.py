"""`voicebot bench tts --json`: first-audio latency, real-time factor and engine speedup.

Per voice:
- ``first_audio_ms``: from ``stream(text)`` to the first audio chunk, for a one-sentence
  reply (median of ``--tts-repeats`` runs; the voice is loaded and warmed up first);
- ``rtf``: synthesis time / audio duration for a three-sentence paragraph (median);
- Tacotron2 + HiFi-GAN only, ``onnx_vs_coqui_speedup``: Coqui's own
  ``TTS.utils.synthesizer.Synthesizer.tts`` time divided by this ONNX engine's time, same
  checkpoints, same text, both on one CPU thread (or the GPU when present).

Trained Tacotron2 weights are not shipped (users download them), so the Tacotron2 numbers
use a Tacotron2 built from Coqui's tacotron2-DDC config with random weights, declaring the
V1 mel, spoken through the embedded HiFi-GAN V1 vocoder (``--tts-vocoder``, default
``hifigan-v1-universal``; ``random-v2`` restores the old random hifigan_v2 pair, the only
one Coqui's Synthesizer can load for the speedup comparison). With V1 the comparison is
the int8 vocoder against the fp32 one instead (``vocoder_fp32``). A random stop token
fires at arbitrary steps, so every engine runs with the stop threshold set above 1 (never
fires) and ``max_decoder_steps = --tts-decoder-steps`` with no length cap from the text
(``max_frames_per_id=None``: it would cut a short piece like "Sure," at 65 of 100 steps):
each decodes exactly that many steps of the same text, so they do the same work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from voicebot.bench_error import BenchUnfinishedError
from voicebot.paths import user_dirs

ONE_SENTENCE = "Sure, I can set a timer for ten minutes."
PARAGRAPH = ("The weather today is sunny and warm, with a light breeze from the west. "
             "Tomorrow will be cloudy, and it may rain in the evening. "
             "Remember to take an umbrella if you go out.")
SPEEDUP_TEXT = "The quick brown fox jumps over the lazy dog."
NEVER_STOP = 2.0  # a sigmoid never exceeds 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tts benchmark")
    group.add_argument("--tts-voice", action="append", dest="tts_voices",
                       help="voice id or path to measure (repeatable; default: the default "
                            "Piper voice and a random-weight Tacotron2)")
    group.add_argument("--tts-repeats", type=int, default=5, help="runs per measurement")
    group.add_argument("--tts-threads", type=int, default=1, help="CPU threads per engine")
    group.add_argument("--tts-parallel-windows", type=int, default=None,
                       help="Piper: decoder windows decoded at once (default: 2 on a CPU "
                            "with 2+ cores, 1 on a GPU); Tacotron2: 2+ runs its decoder on "
                            "a thread of its own beside the vocoder (default: not)")
    group.add_argument("--tts-decoder-steps", type=int, default=100,
                       help="Tacotron2 decoder steps per utterance with random weights")
    group.add_argument("--tts-skip-coqui", action="store_true",
                       help="skip the (slow) Coqui Synthesizer / fp32 vocoder comparison")
    group.add_argument("--tts-vocoder", default="hifigan-v1-universal",
                       help="vocoder of the random Tacotron2: an id or path (a V1 vocoder "
                            "gets a V1-mel Tacotron2), or random-v2 (random hifigan_v2)")
    group.add_argument("--tts-vocoder-precision", choices=("int8", "fp32"), default=None,
                       help="V1 vocoder on ONNX: int8 (CPU default) or fp32")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def measure_stream(voice, text: str, repeats: int) -> dict:
    """first-chunk latency and real-time factor of ``voice.stream(text)``.

    Wall-clock numbers, plus the same measured in the process's CPU time (all its
    threads), a fair figure when others share the machine: with one decode thread it is
    what the wall time would be on an idle machine; with parallel windows it is the
    total work, which the wall time divides between the cores.
    """
    first, rtf, first_cpu, rtf_cpu, audio_s = [], [], [], [], 0.0
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        first_at = first_at_cpu = None
        audio_s = 0.0
        for chunk in voice.stream(text):
            if first_at is None:
                first_at, first_at_cpu = time.perf_counter(), time.process_time()
            audio_s += chunk.duration_s
        total, total_cpu = time.perf_counter() - started, time.process_time() - started_cpu
        if first_at is None:
            raise BenchUnfinishedError(f"voice produced no audio for {text!r}")
        first.append((first_at - started) * 1000)
        first_cpu.append((first_at_cpu - started_cpu) * 1000)
        rtf.append(total / audio_s)
        rtf_cpu.append(total_cpu / audio_s)
    return {"first_audio_ms": _median(first), "first_audio_ms_runs": [round(x, 1) for x in first],
            "rtf": _median(rtf), "first_audio_cpu_ms": _median(first_cpu),
            "rtf_cpu": _median(rtf_cpu), "audio_s": round(audio_s, 3)}


def _voice_result(voice_id: str, args) -> dict:
    from voicebot.tts.voices import VoiceOptions, load_voice

    started = time.perf_counter()
    voice = load_voice(voice_id, VoiceOptions(threads=args.tts_threads,
                                              parallel_windows=args.tts_parallel_windows))
    load_s = time.perf_counter() - started
    one = measure_stream(voice, ONE_SENTENCE, args.tts_repeats)
    paragraph = measure_stream(voice, PARAGRAPH, args.tts_repeats)
    result = {"engine": voice.voices()[0].engine, "load_s": round(load_s, 2),
              "streams_within_sentences": getattr(voice, "streams_within_sentences", None),
              "parallel_windows": getattr(voice, "parallel_windows", 1),
              "first_audio_ms": one["first_audio_ms"], "first_audio_ms_runs":
              one["first_audio_ms_runs"], "rtf": paragraph["rtf"],
              "first_audio_cpu_ms": one["first_audio_cpu_ms"], "rtf_cpu": paragraph["rtf_cpu"],
              "paragraph_audio_s": paragraph["audio_s"]}
    if voice.voices()[0].engine == "piper":
        result["whole_sentence_call_ms"] = _piper_whole_sentence_ms(voice, args)
    return result


def _piper_whole_sentence_ms(voice, args) -> float:
    """The baseline: the one-sentence reply as one call of the original (uncut) graph."""
    from voicebot.models import resolve
    from voicebot.text.spoken import normalize
    from voicebot.tts.piper import PiperVoice

    whole = PiperVoice(resolve(voice.voice_id), threads=args.tts_threads, streaming=False)
    times, cpu = [], []
    for _ in range(args.tts_repeats):
        started, started_cpu = time.perf_counter(), time.thread_time()
        whole.synthesize_ids(whole.phoneme_ids(whole.phonemes(normalize(ONE_SENTENCE))))
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return {"wall": _median(times), "cpu": _median(cpu)}


def _coqui_synthesizer(tts_dir, vocoder_dir, steps: int, use_cuda: bool):
    from TTS.utils.synthesizer import Synthesizer

    synthesizer = Synthesizer(tts_checkpoint=tts_dir / "model_file.pth",
                              tts_config_path=tts_dir / "config.json",
                              vocoder_checkpoint=vocoder_dir / "model_file.pth",
                              vocoder_config=vocoder_dir / "config.json", use_cuda=use_cuda)
    synthesizer.tts_model.decoder.max_decoder_steps = steps
    synthesizer.tts_model.decoder.stop_threshold = NEVER_STOP
    return synthesizer


def _tacotron_result(args) -> dict:
    import torch

    from voicebot.tts.random_voice import write_random_voice
    from voicebot.tts.tacotron import TacotronVoice

    torch.set_num_threads(args.tts_threads)
    steps = args.tts_decoder_steps
    folder = user_dirs().cache / "bench-tts"
    if args.tts_vocoder == "random-v2":
        tts_dir, vocoder_dir = write_random_voice(folder)
        weights = "random (Coqui tacotron2-DDC and hifigan_v2 configs)"
    else:
        from voicebot.tts.random_voice import write_random_tacotron2
        from voicebot.tts.voices import vocoder_path

        vocoder_dir = vocoder_path(args.tts_vocoder)
        tts_dir = write_random_tacotron2(folder, v1_mel=True)
        weights = (f"Tacotron2 random (Coqui tacotron2-DDC config, V1 mel), vocoder "
                   f"{args.tts_vocoder}")
    from voicebot.tts.voices import parallel_vocoder

    parallel = parallel_vocoder(args.tts_parallel_windows)
    started = time.perf_counter()
    voice = TacotronVoice.from_checkpoints(tts_dir, vocoder_dir, engine="onnx",
                                           threads=args.tts_threads, max_decoder_steps=steps,
                                           stop_threshold=NEVER_STOP, max_frames_per_id=None,
                                           vocoder_precision=args.tts_vocoder_precision,
                                           parallel_vocoder=parallel)
    load_s = time.perf_counter() - started
    # Warm-up: the first onnxruntime runs allocate and pick kernels.
    for _ in voice.stream("Hello."):
        pass
    one = measure_stream(voice, ONE_SENTENCE, args.tts_repeats)
    paragraph = measure_stream(voice, PARAGRAPH, max(1, args.tts_repeats // 2))
    result = {"engine": voice.backend.name, "weights": weights,
              "vocoder_precision": getattr(voice.backend, "vocoder_precision", None),
              "parallel_vocoder": parallel,
              "decoder_steps_per_utterance": steps,
              "load_s": round(load_s, 2), "first_audio_ms": one["first_audio_ms"],
              "first_audio_ms_runs": one["first_audio_ms_runs"], "rtf": paragraph["rtf"],
              "first_audio_cpu_ms": one["first_audio_cpu_ms"], "rtf_cpu": paragraph["rtf_cpu"]}
    if args.tts_skip_coqui:
        return result
    if args.tts_vocoder != "random-v2":
        if voice.backend.vocoder_precision != "fp32":
            exact = TacotronVoice.from_checkpoints(
                tts_dir, vocoder_dir, engine="onnx", threads=args.tts_threads,
                max_decoder_steps=steps, stop_threshold=NEVER_STOP, max_frames_per_id=None,
                vocoder_precision="fp32",
                parallel_vocoder=parallel)
            for _ in exact.stream("Hello."):
                pass
            fp32_one = measure_stream(exact, ONE_SENTENCE, args.tts_repeats)
            fp32_paragraph = measure_stream(exact, PARAGRAPH, max(1, args.tts_repeats // 2))
            result["vocoder_fp32"] = {
                "first_audio_ms": fp32_one["first_audio_ms"], "rtf": fp32_paragraph["rtf"],
                "first_audio_cpu_ms": fp32_one["first_audio_cpu_ms"],
                "rtf_cpu": fp32_paragraph["rtf_cpu"]}
        return result

    # The exact (fp32) decoder too, so the gain of the quantized decoder is visible alone.
    exact = TacotronVoice.from_checkpoints(tts_dir, vocoder_dir, engine="onnx",
                                           threads=args.tts_threads, max_decoder_steps=steps,
                                           stop_threshold=NEVER_STOP, max_frames_per_id=None,
                                           decoder_precision="fp32")
    coqui = _coqui_synthesizer(tts_dir, vocoder_dir, steps, torch.cuda.is_available())
    coqui.tts("Hello.", split_sentences=False)  # warm-up
    times: dict[str, list[float]] = {"coqui": [], "onnx": [], "onnx_fp32": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    samples: dict[str, int] = {}
    # Interleaved runs, so a change in machine load hits all three alike; at least five,
    # as on a shared machine a burst of others' work can hit one run of one engine.
    for _ in range(max(5, args.tts_repeats)):
        for name, synthesize in (
                ("coqui", lambda: coqui.tts(SPEEDUP_TEXT, split_sentences=False)),
                # Text to ids included on both sides, as Coqui's tts() does it too.
                ("onnx", lambda: np.concatenate(list(
                    voice.stream_ids(voice.text_ids(SPEEDUP_TEXT))))),
                ("onnx_fp32", lambda: np.concatenate(list(
                    exact.stream_ids(exact.text_ids(SPEEDUP_TEXT)))))):
            started, started_cpu = time.perf_counter(), time.thread_time()
            samples[name] = len(synthesize())
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.thread_time() - started_cpu)
    coqui_s = statistics.median(times["coqui"])
    coqui_cpu = statistics.median(cpu["coqui"])
    result.update({
        "onnx_vs_coqui_speedup": round(coqui_s / statistics.median(times["onnx"]), 2),
        "onnx_fp32_vs_coqui_speedup": round(coqui_s / statistics.median(times["onnx_fp32"]),
                                            2),
        "onnx_vs_coqui_speedup_cpu": round(coqui_cpu / statistics.median(cpu["onnx"]), 2),
        "seconds": {name: _median(values) for name, values in times.items()},
        "cpu_seconds": {name: _median(values) for name, values in cpu.items()},
        # Coqui's Synthesizer appends 10,000 zero samples after each sentence.
        "samples": samples,
        "speedup_text": SPEEDUP_TEXT,
    })
    return result


def run(args: argparse.Namespace) -> dict:
    load_before = os.getloadavg()
    voices = args.tts_voices or ["piper-en-us-joe-medium", "tacotron2-random"]
    results = {}
    for voice_id in voices:
        if voice_id == "tacotron2-random":
            results[voice_id] = _tacotron_result(args)
        else:
            results[voice_id] = _voice_result(voice_id, args)
    import onnxruntime

    return {
        "benchmark": "tts",
        "voices": results,
        "one_sentence": ONE_SENTENCE,
        "paragraph": PARAGRAPH,
        "threads": args.tts_threads,
        "repeats": args.tts_repeats,
        "machine": {"cpus": os.cpu_count(), "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in os.getloadavg()],
                    "onnxruntime": onnxruntime.__version__,
                    "providers": onnxruntime.get_available_providers()},
    }
