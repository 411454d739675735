"""onnxruntime sessions set up the way voicebot needs them.

On a 2-core machine a thread pool that spins while waiting steals the core another stage
(the chat model generating the next sentence) is using, so every session gets an explicit
thread count and no spinning. The CUDA provider is used only when a CUDA device really
exists: onnxruntime-gpu lists it even on machines without one.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

DEFAULT_THREADS = 1


@functools.cache
def cuda_device_present() -> bool:
    """True when the CUDA driver loads and reports at least one device."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return False
    return count.value > 0


def cuda_build_version() -> str | None:
    """The CUDA version this onnxruntime was built for ("12.8"); None for CPU builds."""
    try:
        from onnxruntime.capi import build_and_package_info
    except ImportError:
        return None
    return getattr(build_and_package_info, "cuda_version", None) or None


@functools.cache
def _load_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries from the nvidia-* wheels that PyTorch installed.

    onnxruntime's CUDA provider finds them on its own only when torch was imported
    first; a voice can be loaded before torch is.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception:  # a missing library shows up as a CPU fallback, logged below
        log.warning("could not preload the CUDA libraries for onnxruntime", exc_info=True)


def providers(device: str = "auto") -> list[str]:
    """Execution providers for ``device`` ("auto", "cuda" or "cpu")."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" and not cuda_device_present():
        raise RuntimeError("device 'cuda' asked for, but no CUDA device is available")
    if cuda_device_present():
        _load_cuda_libraries()
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def session(path: Path | str | bytes, threads: int = DEFAULT_THREADS,
            device: str = "auto") -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns pay off for fixed shapes only. A voice's shapes change with every
    # sentence and window, and each new shape left a planned block resident: a
    # three-sentence paragraph grew the process by ~185 MB with them, ~85 MB without,
    # at the same speed (Piper rtf_cpu 0.091 vs 0.088).
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; CUDA fallbacks are logged by us
    model = str(path) if isinstance(path, Path) else path
    wanted = providers(device)
    sess = ort.InferenceSession(model, sess_options=options, providers=wanted)
    if sess.get_providers()[0] != wanted[0]:
        log.warning("onnxruntime could not use %s (is the CUDA %s runtime installed?); "
                    "running on %s", wanted[0], cuda_build_version(), sess.get_providers()[0])
    log.debug("onnxruntime session %s on %s, %d thread(s)",
              path if not isinstance(path, bytes) else "<bytes>", sess.get_providers()[0],
              threads)
    return sess
