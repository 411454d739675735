"""Build the desktop bundle with PyInstaller and run the frozen app's self-test.

Slow (a torch bundle takes many minutes on two cores), so outside the default suite:

    .venv/bin/python -m pytest -m slow tests/packaging/test_frozen_build.py

The same as `bash packaging/build_linux.sh`, which this runs; the build directory is
packaging/build (git-ignored) so PyInstaller's analysis cache makes a rebuild faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux build script")
def test_linux_bundle_builds_and_its_self_test_passes():
    out = ROOT / "packaging" / "build"
    env = {**os.environ, "VOICEBOT_BUILD_DIR": str(out), "VOICEBOT_BUNDLE_VARIANT": "cpu"}
    env.pop("VOICEBOT_SELFTEST_OUTPUT", None)
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "build_linux.sh")], env=env,
                          capture_output=True, text=True, timeout=3500)
    report_file = out / "selftest-cpu.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:], report)
    assert report["ok"] is True and report["versions"]["frozen"] is True
    assert all(check["ok"] for check in report["checks"])
    build = json.loads((out / "build-cpu.json").read_text())
    assert Path(build["tarball"]).is_file() and build["selftest_exit"] == 0
    bundle = out / "dist-cpu" / "voicebot"
    assert (bundle / "voicebot").is_file() and (bundle / "_internal").is_dir()
