"""`voicebot doctor`: what this machine offers voicebot, checked for real.

Each check runs in isolation: one failing import (say, PortAudio missing) is reported
and the rest still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from voicebot import __version__
from voicebot.models.store import ModelStore
from voicebot.paths import user_dirs


def check_python() -> dict[str, Any]:
    ok = (3, 10) <= sys.version_info[:2] <= (3, 12)
    return {"ok": ok, "version": platform.python_version(), "executable": sys.executable,
            "platform": platform.platform(),
            **({} if ok else {"error": "voicebot supports Python 3.10 to 3.12"})}


def check_torch() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {"ok": True, "version": torch.__version__, "cuda_available": cuda,
                            "cuda_build": torch.version.cuda, "threads": torch.get_num_threads()}
    if cuda:
        info["gpus"] = [
            {"name": torch.cuda.get_device_name(i),
             "memory_gb": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
             "bf16": torch.cuda.is_bf16_supported()}
            for i in range(torch.cuda.device_count())
        ]
    else:
        info["gpus"] = []
    return info


def check_onnxruntime() -> dict[str, Any]:
    from importlib import metadata

    import onnxruntime as ort

    from voicebot.tts.onnx_runtime import cuda_build_version, cuda_device_present

    # A plain `onnxruntime` next to `onnxruntime-gpu` silently replaces the GPU build.
    dists = []
    for name in ("onnxruntime", "onnxruntime-gpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            dists.append(f"{name}=={metadata.version(name)}")
    built = ort.get_available_providers()
    # The GPU build lists CUDA/TensorRT even with no GPU; CUDA is usable where the voices'
    # sessions would use it: a CUDA driver that reports a device.
    usable = [p for p in built if p == "CPUExecutionProvider"
              or (p == "CUDAExecutionProvider" and cuda_device_present())]
    info = {"ok": True, "version": ort.__version__, "distributions": dists,
            "built_providers": built, "usable_providers": usable,
            "cuda_build": cuda_build_version()}
    mismatch = cuda_major_mismatch()
    if mismatch:
        info["warning"] = mismatch
    if len(dists) > 1:
        info["ok"] = False
        info["error"] = ("both onnxruntime and onnxruntime-gpu are installed; run "
                         "`pip uninstall -y onnxruntime onnxruntime-gpu && "
                         "pip install onnxruntime-gpu`")
    return info


def cuda_major_mismatch() -> str | None:
    """Why onnxruntime's CUDA provider cannot share PyTorch's CUDA libraries, if it cannot.

    onnxruntime finds its CUDA runtime among the nvidia-* wheels PyTorch installed; a
    build for another major version (onnxruntime-gpu 1.27+ is CUDA 13, torch 2.8 is
    CUDA 12) needs that CUDA runtime installed separately, or the voices run on the CPU.
    """
    import torch

    from voicebot.tts.onnx_runtime import cuda_build_version

    ort_cuda, torch_cuda = cuda_build_version(), torch.version.cuda
    if not ort_cuda or not torch_cuda or ort_cuda.split(".")[0] == torch_cuda.split(".")[0]:
        return None
    return (f"onnxruntime-gpu is built for CUDA {ort_cuda} but PyTorch brings CUDA "
            f"{torch_cuda}: without a CUDA {ort_cuda.split('.')[0]} runtime on this machine "
            "the voices run on the CPU (recognition, chat and training still use the GPU)")


def check_audio() -> dict[str, Any]:
    try:
        import sounddevice as sd
    except OSError as exc:  # the PortAudio library itself is missing
        return {"ok": False, "error": f"PortAudio not found ({exc}); install libportaudio2"}
    devices = []
    for index, dev in enumerate(sd.query_devices()):
        devices.append({
            "index": index, "name": dev["name"],
            "host_api": sd.query_hostapis(dev["hostapi"])["name"],
            "inputs": dev["max_input_channels"], "outputs": dev["max_output_channels"],
            "default_rate": dev["default_samplerate"],
        })
    inputs = [d for d in devices if d["inputs"] > 0]
    outputs = [d for d in devices if d["outputs"] > 0]
    info: dict[str, Any] = {"ok": True, "portaudio": sd.get_portaudio_version()[1],
                            "devices": devices, "input_devices": len(inputs),
                            "output_devices": len(outputs)}
    warnings = []
    if not inputs:
        warnings.append("no input device: connect a microphone to talk")
    if not outputs:
        warnings.append("no output device: replies cannot be heard")
    if warnings:
        info["warnings"] = warnings
    return info


def check_models() -> dict[str, Any]:

    store = ModelStore()
    rows = store.status()
    missing = [r["id"] for r in rows if r.get("default") and not r.get("installed")]
    info: dict[str, Any] = {"ok": not missing, "models": rows}
    if missing:
        info["error"] = "default models missing: " + ", ".join(missing)
    damaged = [r for r in store.verify_conversions(full=False) if not r["ok"]]
    if damaged:
        info["warnings"] = [f"converted model {r['id']} is damaged ({r['problems'][0]}); "
                            "it is rebuilt on the next start" for r in damaged]
    return info


def check_dirs() -> dict[str, Any]:
    result: dict[str, Any] = {"ok": True}
    for name, path in user_dirs().all().items():
        entry: dict[str, Any] = {"path": str(path)}
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
                pass
            entry["writable"] = True
        except OSError as exc:
            entry["writable"] = False
            entry["error"] = str(exc)
            result["ok"] = False
        result[name] = entry
    return result


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "python": check_python,
    "torch": check_torch,
    "onnxruntime": check_onnxruntime,
    "audio": check_audio,
    "models": check_models,
    "dirs": check_dirs,
}


def run_checks() -> dict[str, Any]:
    report: dict[str, Any] = {"voicebot": __version__,
                              "voicebot_home": os.environ.get("VOICEBOT_HOME")}
    for name, check in CHECKS.items():
        try:
            report[name] = check()
        except Exception as exc:  # report every failure, keep checking the rest
            report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    report["ok"] = all(report[name]["ok"] for name in CHECKS)
    return report


def _print_human(report: dict[str, Any]) -> None:
    for name in CHECKS:
        entry = report[name]
        # ok with warnings (no microphone, no speaker) still runs, typed turns included,
        # but must not look fine: it is marked "warn".
        mark = "FAIL" if not entry["ok"] else ("warn" if entry.get("warnings") else "ok  ")
        detail = entry.get("error") or ""
        if name == "python":
            detail = detail or f"Python {entry['version']}"
        elif name == "torch" and entry["ok"]:
            gpus = ", ".join(g["name"] for g in entry["gpus"]) or "no CUDA GPU"
            detail = f"torch {entry['version']}, {gpus}"
        elif name == "onnxruntime" and entry["ok"]:
            detail = f"onnxruntime {entry['version']}: " + ", ".join(entry["usable_providers"])
        elif name == "audio" and entry["ok"]:
            detail = f"{entry['input_devices']} input / {entry['output_devices']} output devices"
            detail += "".join(f"; {w}" for w in entry.get("warnings", []))
        elif name == "models" and entry["ok"]:
            installed = sum(1 for m in entry["models"] if m.get("installed"))
            detail = f"{installed} of {len(entry['models'])} catalog models installed"
        elif name == "dirs" and entry["ok"]:
            detail = str(entry["data"]["path"])
        print(f"[{mark}] {name:12s} {detail}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    report = run_checks()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_human(report)
    return 0 if report["ok"] else 1
