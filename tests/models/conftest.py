"""Fixtures of the model-store tests: a loopback HTTP file server and a private store."""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voicebot.models.catalog import load_catalog
from voicebot.models.store import ModelStore
from voicebot.paths import MODELS_ENV


@dataclass
class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1, with Range support.

    ``drop_after[path] = n`` makes the next response for ``path`` stop after n body bytes
    by shutting the socket, as a flaky network would (once per entry).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    honour_range: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base_url: str = ""

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.base_url + path


def _handler(server_state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            range_header = self.headers.get("Range")
            server_state.requests.append((path, range_header))
            data = server_state.files.get(path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.match(r"bytes=(\d+)-$", range_header or "")
            if match and server_state.honour_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            cut = server_state.drop_after.pop(path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server():
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """A private, empty user models dir (the suite's shared one is left alone)."""
    folder = tmp_path / "models"
    monkeypatch.setenv(MODELS_ENV, str(folder))
    return folder


@pytest.fixture
def make_store(models_dir, tmp_path):
    """A store over a catalog written by the test (the real entries need the internet)."""

    def make(catalog_text: str) -> ModelStore:
        path = tmp_path / "catalog.toml"
        path.write_text(catalog_text, "utf-8")
        return ModelStore(models_dir=models_dir, catalog=load_catalog(path))

    return make


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def sha():
    return sha256
