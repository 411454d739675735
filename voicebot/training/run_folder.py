"""What every training run does with its folder, whatever it trains (GUI-free).

``voicebot train tts`` and ``voicebot train asr`` share these conventions:

- one trainer per run folder: ``RunLock`` (``filelock``, an OS lock on ``.train.lock``
  that the kernel drops when the process dies, kill -9 included); a second trainer on the
  same folder is refused at once, not queued;
- ``StopFlag``: SIGTERM / SIGINT ask the loop to finish its step, save and exit;
- checkpoints ``checkpoint_<step>.pth``, listed in step order; the newest that reads is
  the one resumed (a file cut off by kill -9 falls back to the one before);
- atomic saves (hidden temporary file, fsync, rename) and removal of the temporaries a
  killed run left behind;
- the torch device: "auto" picks CUDA when there is one.

torch is imported only by the functions that need it, so refusals (a locked folder, a
folder that already holds a run) are answered before the seconds torch takes to load.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicebot.atomic_write import atomic_path

log = logging.getLogger(__name__)

LOCK_NAME = ".train.lock"
CHECKPOINT_PREFIX = "checkpoint_"
CHECKPOINT_SUFFIX = ".pth"


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (locked, already holding a run...)."""


class DeviceError(RunFolderError):
    """The requested torch device is not there."""


# ----- one trainer per folder -------------------------------------------------------
class RunLock:
    """An exclusive, non-blocking lock on a run folder, so two trainers never write one.

    ``filelock`` takes an OS lock (flock on POSIX, LockFileEx on Windows) on
    ``<folder>/.train.lock``; it goes away with the process that holds it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._lock = None

    def acquire(self) -> bool:
        """Take the lock; False at once when another holder has it."""
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), timeout=0, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._lock = lock
        return True

    def held_elsewhere(self) -> bool:
        """True while another holder (another process, or another RunLock) has the lock."""
        if self._lock is not None or not self.path.exists():
            return False
        if self.acquire():
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release(force=True)
            self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def __enter__(self) -> RunLock:
        if not self.acquire():
            raise RunFolderError(busy_message(self.path.parent))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def busy_message(folder: str | Path) -> str:
    return (f"another training process is writing {folder} (it may still be running in "
            "the background)")


# ----- cancelling -------------------------------------------------------------------
class StopFlag:
    """Set by SIGTERM / SIGINT (or by ``request``); the loop checks it between steps."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> StopFlag:
        """Catch SIGTERM and SIGINT from now on (main thread only, as Python requires)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: object) -> None:
        self.signal = signum

    def request(self, signum: int = signal.SIGTERM) -> None:
        self.signal = signum

    @property
    def set(self) -> bool:
        return self.signal is not None


# ----- checkpoints ------------------------------------------------------------------
def checkpoint_step(path: str | Path) -> int | None:
    """The step in ``checkpoint_<step>.pth``, or None for any other name."""
    name = Path(path).name
    if not (name.startswith(CHECKPOINT_PREFIX) and name.endswith(CHECKPOINT_SUFFIX)):
        return None
    digits = name[len(CHECKPOINT_PREFIX):-len(CHECKPOINT_SUFFIX)]
    return int(digits) if digits.isdigit() else None


def checkpoint_files(out: str | Path) -> list[Path]:
    """The folder's checkpoints, oldest step first ([] when there is no folder)."""
    found = [(checkpoint_step(p), p) for p in Path(out).glob(f"{CHECKPOINT_PREFIX}*"
                                                               f"{CHECKPOINT_SUFFIX}")]
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def latest_checkpoint(out: str | Path,
                      accept: Callable[[Any], bool] | None = None) -> tuple[Path | None, Any]:
    """(path, state) of the newest checkpoint that reads (and that ``accept`` takes),
    or (None, None). Loaded on the CPU with ``weights_only=True``."""
    import torch

    for path in reversed(checkpoint_files(out)):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # cut off by kill -9, damaged: try the one before
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
            continue
        if accept is None or accept(state):
            return path, state
        log.warning("checkpoint %s is not a checkpoint of this run; trying an older one",
                    path)
    return None, None


def prune_checkpoints(out: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for old in checkpoint_files(out)[:-keep] if keep > 0 else checkpoint_files(out):
        with contextlib.suppress(OSError):
            old.unlink()


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through ``atomic_path``: a reader never sees half a checkpoint."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def remove_stale_temps(out: str | Path) -> list[Path]:
    """Delete the half-written files of a run killed while saving; returns them.

    Only call it while holding the folder's ``RunLock``: a live trainer's temporaries
    are not stale."""
    removed = []
    # ".<name>.tmp" from save_atomic; "checkpoint_<n>.tmp" from older versions.
    for stale in [*Path(out).glob(".*.tmp"), *Path(out).glob(f"{CHECKPOINT_PREFIX}*.tmp")]:
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
    return removed


def refuse_existing_run(out: str | Path, resume: bool) -> None:
    """Raise unless ``out`` is free for a new run or ``resume`` continues it."""
    if not resume and checkpoint_files(out):
        raise RunFolderError(f"{out} already holds a run (checkpoints): pass --resume to "
                             "continue it, or choose another output folder")


# ----- device -----------------------------------------------------------------------
def pick_device(requested: str = "auto", local_rank: int = 0):
    """The torch device for "auto" | "cuda" | "cpu" (CUDA: this rank's GPU)."""
    import torch

    if requested not in ("auto", "cuda", "cpu"):
        raise DeviceError(f"unknown device {requested!r}: use auto, cuda or cpu")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but torch sees no GPU")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def set_cpu_threads(device, threads: int | None) -> None:
    """Limit torch's CPU threads (the app keeps a core; ARCHITECTURE.md, CPU thread budget)."""
    if threads and getattr(device, "type", str(device)) == "cpu":
        import torch

        torch.set_num_threads(threads)
