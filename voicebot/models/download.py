"""Downloading one file over HTTP(S): resumable, verified, cancellable.

The file is written to ``<dest>.part``. An interrupted transfer (dropped connection,
timeout, a cancelled download, a killed process) keeps that part file, and the next
attempt asks the server for the rest with an HTTP Range request. Only a complete file
whose size and sha256 match is renamed onto ``dest``; a mismatch deletes the part file
and raises, so a bad download never replaces anything.

Plain ``urllib`` on purpose: it is enough, it follows redirects (Hugging Face sends
files from a CDN), and it adds no dependency.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from voicebot import __version__
from voicebot.cancel import CancelToken
from voicebot.models.errors import ChecksumMismatchError, DownloadCancelledError, DownloadError

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
USER_AGENT = f"voicebot/{__version__}"
# Errors after which asking again for the rest of the file can succeed.
_TRANSIENT = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError,
              socket.timeout, TimeoutError)


@dataclass(frozen=True)
class Progress:
    """One progress report: bytes of ``file`` done so far, of ``total`` (None: unknown)."""

    file: str
    done: int
    total: int | None
    rate: float            # bytes per second, smoothed
    eta: float | None      # seconds left; None when the total or the rate is unknown

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


class _RateMeter:
    """Transfer rate over the last few seconds, so ETA follows the current speed."""

    def __init__(self, window: float = 3.0):
        self.window = window
        self.samples: list[tuple[float, int]] = []

    def add(self, now: float, done: int) -> float:
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window:
            self.samples.pop(0)
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def fetch(url: str, dest: Path, *, sha256: str = "", size: int = 0,
          progress: ProgressFn | None = None, cancel: CancelToken | None = None,
          retries: int = 5, timeout: float = 30.0, label: str | None = None) -> str:
    """Download ``url`` to ``dest`` and return the sha256 of what arrived.

    ``sha256`` / ``size``, when given, must match or ChecksumMismatchError is raised and
    nothing is written to ``dest``. Transient network errors are retried (resuming) up
    to ``retries`` times.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    name = label or dest.name
    hasher, done = _resume_state(part)
    total: int | None = size or None
    meter = _RateMeter()
    last_report = 0.0
    attempt = 0
    while True:
        raise_if_cancelled(cancel, name)
        try:
            response = _open(url, done, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and done and (not total or done >= total):
                break  # we already have every byte (e.g. killed just before the rename)
            if exc.code == 416:  # our part file is longer than the file: start over
                hasher, done = _restart(part)
                continue
            if exc.code >= 500 and attempt < retries:
                attempt += 1
                _backoff(attempt, name, exc)
                continue
            raise DownloadError(f"downloading {name} from {url} failed: HTTP {exc.code} "
                                f"{exc.reason}") from None
        except (urllib.error.URLError, *_TRANSIENT) as exc:
            if attempt < retries:
                attempt += 1
                _backoff(attempt, name, exc)
                continue
            raise DownloadError(f"downloading {name} from {url} failed: "
                                f"{getattr(exc, 'reason', exc)}; check the network and run "
                                "the same command again (it resumes)") from None
        with response:
            if done and response.status != 206:
                # The server ignored the Range header and sends the whole file again.
                hasher, done = _restart(part)
            total = _total_size(response, done) or total
            try:
                with open(part, "ab") as out:
                    while True:
                        raise_if_cancelled(cancel, name)
                        chunk = response.read(CHUNK)
                        if not chunk:
                            break
                        _write_chunk(out, chunk)
                        hasher.update(chunk)
                        done += len(chunk)
                        now = time.monotonic()
                        rate = meter.add(now, done)
                        if progress and (now - last_report >= 0.1 or done == total):
                            last_report = now
                            progress(_report(name, done, total, rate))
            except _TRANSIENT as exc:
                if attempt < retries:
                    attempt += 1
                    _backoff(attempt, name, exc)
                    continue
                raise DownloadError(f"downloading {name} failed after {retries} retries: "
                                    f"{exc}; run the same command again (it resumes)") from None
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise _disk_full(part) from None
                raise
        if total is not None and done < total:
            # The connection closed early without an error: ask for the rest.
            if attempt < retries:
                attempt += 1
                _backoff(attempt, name, f"connection closed at {done} of {total} bytes")
                continue
            raise DownloadError(f"downloading {name} stopped at {done} of {total} bytes; "
                                "run the same command again (it resumes)")
        break
    if progress:
        progress(_report(name, done, total, meter.add(time.monotonic(), done)))
    return _finish(part, dest, hasher.hexdigest(), done, sha256, size, name)


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    token = os.environ.get("HF_TOKEN")
    if token and "huggingface" in url:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                  timeout=timeout)


def _resume_state(part: Path):
    """The hash state and length of what an earlier attempt left in ``part``."""
    hasher = hashlib.sha256()
    done = 0
    if part.exists():
        with open(part, "rb") as handle:
            while chunk := handle.read(1 << 20):
                hasher.update(chunk)
                done += len(chunk)
        if done:
            log.info("resuming %s at %d bytes", part.name, done)
    return hasher, done


def _restart(part: Path):
    part.unlink(missing_ok=True)
    return hashlib.sha256(), 0


def _total_size(response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _write_chunk(out, chunk: bytes) -> None:
    out.write(chunk)


def _disk_full(part: Path) -> DownloadError:
    free = shutil.disk_usage(part.parent).free
    part.unlink(missing_ok=True)  # give the space back; a later try starts over
    return DownloadError(f"the disk is full while writing {part.parent} ({free // 2**20} MB "
                         "free); free some space and run the same command again")


def raise_if_cancelled(cancel: CancelToken | None, name: str) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelledError(f"download of {name} cancelled; running it again "
                                     "resumes where it stopped")


def _backoff(attempt: int, name: str, why: object) -> None:
    log.warning("download of %s interrupted (%s); retrying (%d)", name, why, attempt)
    time.sleep(min(0.2 * 2 ** (attempt - 1), 5.0))


def _report(name: str, done: int, total: int | None, rate: float) -> Progress:
    eta = (total - done) / rate if total and rate > 0 else None
    return Progress(file=name, done=done, total=total, rate=rate, eta=eta)


def _finish(part: Path, dest: Path, digest: str, done: int, sha256: str, size: int,
            name: str) -> str:
    if size and done != size:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(f"{name}: received {done} bytes, expected {size}; "
                                    "the download was discarded")
    if sha256 and digest != sha256.lower():
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{name}: sha256 {digest} does not match the catalog's {sha256}; the download "
            "was discarded (a changed or tampered file, or a wrong catalog entry)")
    with open(part, "rb+") as handle:
        os.fsync(handle.fileno())  # the rename below must not publish unwritten data
    os.replace(part, dest)
    return digest
