"""Downloads against a real HTTP server on 127.0.0.1: progress, resume, hashes, cancel."""

from __future__ import annotations

import errno
import hashlib
import threading

import pytest

from voicebot.models import download
from voicebot.models.errors import ChecksumMismatchError, DownloadCancelledError, DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, varied so a wrong offset changes the hash


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_reports_progress_and_verifies(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD)
    events = []
    dest = tmp_path / "model.bin"
    got = download.fetch(url, dest, sha256=digest(PAYLOAD), size=len(PAYLOAD),
                         progress=events.append)
    assert got == digest(PAYLOAD)
    assert dest.read_bytes() == PAYLOAD
    assert not download.part_path(dest).exists()
    assert events and events[-1].done == events[-1].total == len(PAYLOAD)
    assert all(e.file == "model.bin" for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events)
    assert events[-1].rate >= 0 and events[-1].fraction == 1.0


def test_resumes_with_range_after_the_server_drops_the_connection(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD)
    file_server.drop_after["/m/model.bin"] = 300_000
    dest = tmp_path / "model.bin"
    download.fetch(url, dest, sha256=digest(PAYLOAD), retries=2)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r for p, r in file_server.requests if p == "/m/model.bin"]
    assert ranges[0] is None
    assert ranges[1] == "bytes=300000-"  # asked only for the rest


def test_part_file_left_by_an_earlier_run_is_resumed(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD)
    dest = tmp_path / "model.bin"
    download.part_path(dest).write_bytes(PAYLOAD[:123_456])
    download.fetch(url, dest, sha256=digest(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert file_server.requests == [("/m/model.bin", "bytes=123456-")]


def test_server_without_range_support_restarts_cleanly(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD)
    file_server.honour_range = False
    dest = tmp_path / "model.bin"
    download.part_path(dest).write_bytes(b"stale bytes from another version")
    download.fetch(url, dest, sha256=digest(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_sha256_mismatch_is_refused_and_nothing_is_written(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD)
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"the previous good copy")
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        download.fetch(url, dest, sha256="0" * 64)
    assert dest.read_bytes() == b"the previous good copy"
    assert not download.part_path(dest).exists()


def test_cancel_keeps_the_part_file_for_a_later_resume(file_server, tmp_path):
    url = file_server.add("/m/model.bin", PAYLOAD * 4)
    dest = tmp_path / "model.bin"
    cancel = threading.Event()
    with pytest.raises(DownloadCancelledError, match="resumes"):
        download.fetch(url, dest, progress=lambda p: cancel.set(), cancel=cancel)
    part = download.part_path(dest)
    assert not dest.exists()
    assert 0 < part.stat().st_size < len(PAYLOAD) * 4
    download.fetch(url, dest, sha256=digest(PAYLOAD * 4))
    assert dest.read_bytes() == PAYLOAD * 4


def test_disk_full_is_reported_and_the_part_file_removed(file_server, tmp_path, monkeypatch):
    url = file_server.add("/m/model.bin", PAYLOAD)
    dest = tmp_path / "model.bin"
    real_write = download._write_chunk
    calls = {"n": 0}

    # A full disk cannot be produced here; the fault is injected at the one write call.
    def write_until_full(out, chunk):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(out, chunk)

    monkeypatch.setattr(download, "_write_chunk", write_until_full)
    with pytest.raises(DownloadError, match="disk is full"):
        download.fetch(url, dest)
    assert not dest.exists()
    assert not download.part_path(dest).exists()


def test_http_error_names_the_url(file_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.fetch(file_server.base_url + "/missing.bin", tmp_path / "x.bin")
