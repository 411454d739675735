"""Logging to the console and to a rotating file in the user log dir."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from voicebot.paths import ensure, user_dirs

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def log_file() -> Path:
    return user_dirs().logs / "voicebot.log"


def ensure_std_streams() -> None:
    """Give a windowed app (``pythonw``, a console-less frozen build) working
    ``sys.stdout``/``sys.stderr``: they start as None there, and libraries that print or
    draw progress bars (transformers, tqdm) would raise on them. The output is discarded;
    the log file keeps what matters."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def setup_logging(level: int = logging.INFO, console: bool = True) -> Path | None:
    """Configure the root logger once; returns the log file path (None if not writable)."""
    # A windowed app has no console: a console handler would have nothing to write to.
    console = console and sys.stderr is not None
    ensure_std_streams()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_voicebot", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    formatter = logging.Formatter(LOG_FORMAT)
    path: Path | None = log_file()
    try:
        ensure(path.parent)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler._voicebot = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    except OSError as exc:  # a read-only home must not stop the app
        print(f"voicebot: cannot write log file {path}: {exc}", file=sys.stderr)
        path = None
    # A windowed (frozen) app has no stderr at all.
    if console and sys.stderr is not None:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream_handler.setLevel(logging.WARNING if level <= logging.INFO else level)
        if level > logging.DEBUG:
            # Libraries' deprecation notices ("Use `cache` instead.") say nothing a user
            # can act on: they go to the log file only (and to the console with -v).
            stream_handler.addFilter(lambda record: record.name != "py.warnings")
        stream_handler._voicebot = True  # type: ignore[attr-defined]
        root.addHandler(stream_handler)
    # warnings.warn() from any library becomes a log record (logger "py.warnings").
    logging.captureWarnings(True)
    return path
