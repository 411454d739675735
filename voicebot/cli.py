"""The `voicebot` command line.

With no subcommand it opens the desktop app. Each subcommand's implementation is
imported only when it runs, so `voicebot --help` and `voicebot doctor` stay fast and
heavy libraries (torch, Qt) load only for the commands that need them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from voicebot import APP_DISPLAY_NAME, __version__
from voicebot.logging_setup import setup_logging
from voicebot.models.errors import ModelError

EXIT_NOT_IMPLEMENTED = 3

# name -> (help, "module:function" that adds arguments, "module:function" that runs it).
# An entry whose runner is None is a planned command: it says so and exits non-zero.
Command = tuple[str, str | None, str | None]
COMMANDS: dict[str, Command] = {
    "gui": ("open the desktop app (the default)", "voicebot.ui.launch:add_arguments",
            "voicebot.ui.launch:run"),
    "doctor": ("check Python, torch/CUDA, onnxruntime, audio devices, models and folders",
               "voicebot.doctor:add_arguments", "voicebot.doctor:run"),
    "models": ("list, download, import, verify or remove models",
               "voicebot.models.cli:add_arguments", "voicebot.models.cli:run"),
    "transcribe": ("transcribe audio files", "voicebot.asr.commands:add_transcribe_arguments",
                   "voicebot.asr.commands:run_transcribe"),
    "asr-eval": ("word error rate of the recogniser on a manifest",
                 "voicebot.asr.commands:add_eval_arguments", "voicebot.asr.commands:run_eval"),
    "say": ("speak text with a voice, or write it to a WAV file",
            "voicebot.tts.say:add_arguments", "voicebot.tts.say:run"),
    "chat": ("get a reply from the chat model (one message, or interactive)",
             "voicebot.lm.cli_chat:add_arguments", "voicebot.lm.cli_chat:run"),
    "bench": ("benchmarks that print JSON (audio, asr, lm, tts, turn)",
              "voicebot.bench:add_arguments", "voicebot.bench:run"),
    "train": ("train a voice (tts, base) or adapt recognition (asr, asr-vocab); JSON "
              "progress lines on stdout",
              "voicebot.training.cli:add_arguments", "voicebot.training.cli:run"),
}


def _load(ref: str) -> Callable:
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _not_implemented(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        print(f"voicebot {name}: not implemented yet in this version ({__version__}).",
              file=sys.stderr)
        return EXIT_NOT_IMPLEMENTED
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicebot",
        description=f"{APP_DISPLAY_NAME}: an offline voice chatbot with a voice-adaptation "
                    "studio. Without a command it opens the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--self-test", action="store_true",
                        help="start offscreen, load the default models, run one turn, "
                             "print a JSON report")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_ref, run_ref) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if add_ref:
            _load(add_ref)(p)
        p.set_defaults(run_ref=run_ref, command_name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    if args.self_test:
        # By name, like the subcommands: the self-test starts Qt, and the command line
        # itself stays GUI-free (import-linter contract).
        return _exiting(int(_load("voicebot.selftest:run")(args)))
    if args.command is None:
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "gui"])
    run_ref = args.run_ref
    runner = _load(run_ref) if run_ref else _not_implemented(args.command_name)
    try:
        return _exiting(int(runner(args) or 0))
    except ModelError as exc:
        # Unknown, missing or damaged models: the message says what to do (errors.py),
        # so the user gets it as one line, not a traceback.
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        print(f"voicebot: {exc}", file=sys.stderr)
        return _exiting(2)


def _exiting(status: int) -> int:
    """``status``, also kept for a process that must leave without terminating PortAudio
    (``voicebot.audio.portaudio_life``): its exit handler cannot see the real one."""
    from voicebot.audio import portaudio_life

    portaudio_life.exit_status = status
    return status


def gui_main() -> int:
    """Entry point of the windowed launcher (`voicebot-gui`): always the desktop app."""
    return main(sys.argv[1:] or ["gui"])
