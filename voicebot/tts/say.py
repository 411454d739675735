"""`voicebot say "TEXT" [-o out.wav] [--voice ID]`: speak text, or write it to a WAV file.

Audio is played (or written) chunk by chunk as the voice produces it, so speech starts
at once and a long text never sits in memory as one array.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from voicebot.atomic_write import atomic_path
from voicebot.settings import load_settings
from voicebot.tts.base import AudioChunk

log = logging.getLogger(__name__)

EXIT_FAILED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?",
                        help="what to say; '-' or nothing reads it from standard input")
    parser.add_argument("-o", "--output", type=Path, help="write a WAV file instead of playing")
    parser.add_argument("--voice", help="voice id or model path (default: the settings' voice)")
    parser.add_argument("--vocoder", help="Tacotron2 voices: vocoder id or checkpoint path "
                                          "(default hifigan-v1-universal, embedded)")
    parser.add_argument("--engine", choices=("onnx", "torch"), default="onnx",
                        help="Tacotron2 voices: run on onnxruntime (default) or torch")
    parser.add_argument("--decoder-precision", choices=("int4", "int8", "fp32"),
                        help="Tacotron2 on ONNX: 4-bit decoder weights (CPU default, ~5x "
                             "faster), int8, or exact fp32 (CUDA default)")
    parser.add_argument("--vocoder-precision", choices=("int8", "fp32"),
                        help="Tacotron2 on ONNX with the HiFi-GAN V1 vocoder: int8 "
                             "convolutions (CPU default, ~1.5x faster) or exact fp32")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--output-device", help="play on this device (default: the settings' "
                                               "output device, else the system default)")
    parser.add_argument("--list-voices", action="store_true", help="list voices and exit")


def _read_text(args: argparse.Namespace) -> str:
    if args.text is None or args.text == "-":
        return sys.stdin.read()
    return args.text


def _write(chunks, path: Path, sample_rate: int) -> float:
    """Stream chunks into ``path`` (written beside it first, then renamed into place)."""
    import soundfile as sf

    seconds = 0.0
    with atomic_path(path, suffix=".part") as tmp, \
            sf.SoundFile(tmp, "w", samplerate=sample_rate, channels=1, subtype="PCM_16",
                         format="WAV") as out:
        for chunk in chunks:
            out.write(chunk.samples)
            seconds += chunk.duration_s
    return seconds


def _play(chunks, output_device: str) -> float:
    from voicebot.audio.player import Player

    seconds = 0.0
    with Player(output_device) as player:
        try:
            last: AudioChunk | None = None
            for chunk in chunks:
                player.play(chunk.samples, chunk.sample_rate)
                seconds += chunk.duration_s
                last = chunk
            if last is not None:
                player.finish()
                player.wait_done()
                time.sleep(player.output_latency)  # let the device play out its buffer
        except KeyboardInterrupt:
            player.stop()
            raise
    return seconds


def run(args: argparse.Namespace) -> int:
    from voicebot.tts.voices import UnknownVoiceError, VoiceOptions, catalog_voices, load_voice

    if args.list_voices:
        print(json.dumps(catalog_voices(), indent=2))
        return 0
    text = _read_text(args)
    options = VoiceOptions(engine=args.engine, device=args.device, threads=args.threads,
                           vocoder=args.vocoder, decoder_precision=args.decoder_precision,
                           vocoder_precision=args.vocoder_precision)
    voice_id = args.voice or load_settings().tts.voice  # the entry point hands it down
    try:
        voice = load_voice(voice_id, options)
    except (UnknownVoiceError, FileNotFoundError) as exc:
        print(f"voicebot say: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # model store errors carry the command that fixes them
        print(f"voicebot say: cannot load voice {voice_id}: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    from voicebot.text.cleanup import drop_other_scripts
    from voicebot.tts.text import pieces

    latin_only = bool(getattr(voice, "reads_latin_only", True))
    readable = drop_other_scripts(text)[0] if latin_only else text
    if not any(True for _ in pieces(readable)):
        # Empty text, emoji or symbols only, or only a script this voice cannot read: a
        # silent (0-second) WAV would look like success.
        print("voicebot say: nothing this voice can say in the text (no words it can read)",
              file=sys.stderr)
        return EXIT_FAILED
    chunks = voice.stream(text)
    if args.output:
        seconds = _write(chunks, args.output, voice.sample_rate)
        print(f"wrote {seconds:.2f} s of speech to {args.output}", file=sys.stderr)
        return 0
    device = args.output_device
    if device is None:
        device = load_settings().audio.output_device
    from voicebot.audio.devices import AudioDeviceError

    try:
        seconds = _play(chunks, device)
    except AudioDeviceError as exc:
        print(f"voicebot say: cannot play: {exc} (write a file with -o instead)",
              file=sys.stderr)
        return EXIT_FAILED
    if seconds == 0:
        print("voicebot say: nothing to say", file=sys.stderr)
    return 0
