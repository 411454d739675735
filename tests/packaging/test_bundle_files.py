"""What the PyInstaller spec keeps and leaves out (packaging/pyinstaller/bundle_files.py),
and the runtime hook that makes a windowed build survive without stdout/stderr."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

PYINSTALLER_DIR = Path(__file__).resolve().parents[2] / "packaging" / "pyinstaller"


@pytest.fixture(scope="module")
def bf():
    spec = importlib.util.spec_from_file_location("bundle_files",
                                                  PYINSTALLER_DIR / "bundle_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dest", [
    "nvidia/cudnn/lib/libcudnn_engines_precompiled.so.9", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
    "nvidia/cuda_cupti/lib/libnvperf_host.so",
    "nvidia/cusolver/lib/libcusolver.so.11", "torch/lib/libtorch_cuda_linalg.so",
    "onnxruntime/capi/libonnxruntime_providers_cuda.so"])
def test_cpu_variant_drops_libraries_only_loaded_for_cuda_kernels(bf, dest):
    assert bf.dropped_by_variant(dest, "cpu")
    assert not bf.dropped_by_variant(dest, "cuda")


@pytest.mark.parametrize("dest", [
    # Linked directly by libtorch_cuda / libtorch_python: `import torch` needs them.
    "nvidia/cudnn/lib/libcudnn.so.9", "nvidia/cublas/lib/libcublasLt.so.12",
    "nvidia/cuda_runtime/lib/libcudart.so.12", "torch/lib/libtorch_cuda.so",
    "nvidia/cuda_cupti/lib/libcupti.so.12",  # linked by libtorch_cpu (profiler)
    "onnxruntime/capi/libonnxruntime_providers_shared.so", "libportaudio.so.2"])
def test_cpu_variant_keeps_what_import_torch_and_onnxruntime_need(bf, dest):
    assert not bf.dropped_by_variant(dest, "cpu")


@pytest.mark.parametrize(("dest", "unwanted"), [
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
    ("PySide6/Qt/plugins/imageformats/libqtiff.so", True),
    ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", True),
    ("PySide6/Qt/plugins/multimedia/libffmpegmediaplugin.so", True),
    ("PySide6\\Qt\\plugins\\imageformats\\qsvg.dll", False),
    ("PySide6/Qt/lib/libQt6Core.so.6", False)])
def test_qt_plugins(bf, dest, unwanted):
    assert bf.unwanted_qt_plugin(dest) is unwanted


def test_variant_comes_from_the_environment(bf, monkeypatch):
    monkeypatch.delenv("VOICEBOT_BUNDLE_VARIANT", raising=False)
    assert bf.variant() == "cpu"
    monkeypatch.setenv("VOICEBOT_BUNDLE_VARIANT", "CUDA")
    assert bf.variant() == "cuda"
    monkeypatch.setenv("VOICEBOT_BUNDLE_VARIANT", "rocm")
    with pytest.raises(SystemExit):
        bf.variant()


def test_every_model_package_is_installed(bf):
    # The spec refuses to build without them; the set-up installs them.
    for module in bf.MODEL_PACKAGES:
        assert importlib.util.find_spec(module) is not None, module


def test_runtime_hook_gives_a_windowed_app_working_streams(tmp_path):
    # A windowed (console=False) frozen app starts with sys.stdout/sys.stderr None.
    code = (
        "import sys, runpy, warnings\n"
        "sys.stdout = sys.stderr = None\n"
        f"runpy.run_path({str(PYINSTALLER_DIR / 'rthook_voicebot.py')!r})\n"
        "print('discarded'); sys.stderr.write('discarded too'); warnings.warn('w')\n"
        f"open({str(tmp_path / 'ok')!r}, 'w').write('ok')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert (tmp_path / "ok").read_text() == "ok"


def test_setup_logging_gives_a_windowed_app_working_streams(tmp_path):
    # The same without the frozen app's hook: `voicebot-gui` under pythonw on Windows.
    code = (
        "import sys, logging\n"
        "sys.stdout = sys.stderr = None\n"
        "from voicebot.logging_setup import setup_logging\n"
        "path = setup_logging(logging.INFO)\n"
        "print('discarded'); sys.stderr.write('discarded too')\n"
        "logging.getLogger('x').warning('to the file only')\n"
        f"open({str(tmp_path / 'ok')!r}, 'w').write(str(path))\n")
    env = {**os.environ, "VOICEBOT_HOME": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=env)
    log = Path((tmp_path / "ok").read_text())
    assert log.is_relative_to(tmp_path / "home") and "to the file only" in log.read_text()


def test_frozen_repo_root_is_the_bundle_folder(monkeypatch, tmp_path):
    from voicebot import paths

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.repo_root() == tmp_path
    assert paths.assets_dir() == tmp_path / "assets"
