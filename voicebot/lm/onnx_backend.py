"""The fast CPU path: the exported int8 decoder on ONNX Runtime (GUI-free).

The export (``onnx_export``) runs once per model and is cached in the user models dir
next to the model's other conversions (``converted/<model id>/onnx-cpu``), rebuilt
only when the model's weights or the export code change.

Threads: ONNX Runtime's pool is per session, so the chat model's share of the CPU is set
here without touching torch's process-wide setting, and the pool does not spin while
idle (a spinning pool would steal the core that TTS needs while the LM waits).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.cancel import CancelToken
from voicebot.lm import onnx_export
from voicebot.lm.backend import prefill, reusable_prefix
from voicebot.models import resolve
from voicebot.models.conversions import converted

log = logging.getLogger(__name__)

CONVERSION_NAME = "onnx-cpu"


def default_threads() -> int:
    """One core of two, half of more (up to 4): the LM shares the CPU with TTS and ASR,
    and on 2 cores a 2-thread run collapses when anything else is busy (ARCHITECTURE.md,
    CPU thread budget)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores // 2)


def _weight_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    return [*files, model_dir / "config.json"]


def exported(model_dir: Path, model_id: str | None, conversion: str,
             export: Callable[[Path, Path], None], version: str) -> Path:
    """The folder holding ``export(model_dir, out_dir)``'s output, built the first time
    (and again when the weights or ``version`` change)."""
    if model_id is None:  # a local folder: name its cache after the folder and its path
        digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:8]
        model_id = f"local-{model_dir.name}-{digest}"
    return converted(model_id, conversion, _weight_files(model_dir),
                     partial(export, model_dir), version=version)


def exported_decoder(model_dir: Path, model_id: str | None = None) -> Path:
    """The folder with the ONNX export of ``model_dir``, exporting it the first time."""
    return exported(model_dir, model_id, CONVERSION_NAME, onnx_export.export_decoder,
                    onnx_export.EXPORT_VERSION)


def prepare_cpu_decoder(model_id: str) -> Path:
    """Build (once) the CPU graphs of a catalog chat model, used by `models prepare`: the
    decoder that writes replies and the graph that scores recognition hypotheses
    (``onnx_hypothesis_scorer``), so that neither export runs in the app."""
    from voicebot.lm.onnx_hypothesis_scorer import exported_scorer

    folder = resolve(model_id)
    exported_scorer(folder, model_id)
    return exported_decoder(folder, model_id)


def cpu_session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with its own ``threads``-thread pool that does not spin
    while idle (a spinning pool would steal the core another stage needs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """The exported decoder with its key/value cache in preallocated buffers.

    Each layer's cache is one [1, kv_heads, capacity, head_dim] buffer bound as both the
    past input and the present output, so GroupQueryAttention appends in place; cutting
    the cache back (a new prompt sharing only a prefix) is just a smaller length.

    The binding is made once: the caches, the logits buffer and one-token inputs stay
    bound, and a decode step only writes four numbers into arrays ONNX Runtime already
    reads (rebinding ~120 names per token cost ~0.3 ms of a ~13 ms token).
    """

    def __init__(self, export_dir: Path, threads: int | None = None, capacity: int = 2048):
        import onnxruntime as ort

        self.layout = json.loads((export_dir / onnx_export.LAYOUT_FILE).read_text("utf-8"))
        if self.layout.get("export_version") != onnx_export.EXPORT_VERSION:
            raise ValueError(f"{export_dir} was exported by another voicebot version; "
                             "delete it to export again")
        self.threads = threads or default_threads()
        self.capacity = min(capacity, self.layout["max_positions"])
        self.session = cpu_session(export_dir / onnx_export.MODEL_FILE, self.threads)
        shape = (1, self.layout["kv_heads"], self.capacity, self.layout["head_dim"])
        layers = self.layout["layers"]
        self._binding = self.session.io_binding()
        for past, present in zip(onnx_export.past_names(layers),
                                 onnx_export.present_names(layers), strict=True):
            cache = ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32))
            self._binding.bind_ortvalue_input(past, cache)
            self._binding.bind_ortvalue_output(present, cache)
        # Bound once; ONNX Runtime reads (and writes) these arrays' memory on every run.
        self._token = np.zeros((1, 1), np.int64)
        self._position = np.zeros((1, 1), np.int64)
        self._seqlens = np.zeros(1, np.int32)
        self._total = np.zeros((), np.int32)
        self._logits = np.zeros((1, self.layout["vocab_size"]), np.float32)
        self._bound: dict[str, Any] = {}  # numpy arrays behind the bound OrtValues
        for name, array in (("seqlens_k", self._seqlens), ("total_len", self._total)):
            self._bind_input(name, array)
        self._binding.bind_ortvalue_output("logits",
                                           ort.OrtValue.ortvalue_from_numpy(self._logits))
        weights = self.layout.get("weights", {})
        self.name = "onnxruntime-cpu-" + "+".join(
            f"int{bits.removesuffix('bit')}" for bits, count in sorted(weights.items()) if count)
        self.reused_tokens = 0
        self._ids: list[int] = []

    def _bind_input(self, name: str, array: np.ndarray) -> None:
        import onnxruntime as ort

        if self._bound.get(name) is not array:
            self._binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(array))
            self._bound[name] = array

    def _forward(self, ids: Sequence[int]) -> np.ndarray:
        cached, new = len(self._ids), len(ids)
        total = cached + new
        if total > self.capacity:
            raise ValueError(f"the conversation needs {total} tokens; the cache holds "
                             f"{self.capacity}")
        if new == 1:
            self._token[0, 0] = ids[0]
            self._position[0, 0] = cached
            tokens, positions = self._token, self._position
        else:
            tokens = np.asarray([ids], dtype=np.int64)
            positions = np.arange(cached, total, dtype=np.int64)[None, :]
        self._bind_input("input_ids", tokens)
        self._bind_input("position_ids", positions)
        self._seqlens[0] = total - 1
        self._total[...] = total
        self.session.run_with_iobinding(self._binding)
        self._ids.extend(ids)
        return self._logits[0].copy()  # the buffer is overwritten by the next run

    def start(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray | None:
        keep = reusable_prefix(self._ids, ids)
        del self._ids[keep:]  # what lies past the kept length is simply overwritten
        self.reused_tokens = keep
        return prefill(self._forward, ids, keep, cancel, self.reset)

    def step(self, token: int) -> np.ndarray:
        try:
            return self._forward([token])
        except BaseException:
            self.reset()
            raise

    def reset(self) -> None:
        """Forget the cache (also after an error: it may not match ``_ids`` any more)."""
        self._ids = []
