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
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from voicebot.lm import onnx_export
from voicebot.lm.backend import PREFILL_CHUNK, CancelToken, reusable_prefix

log = logging.getLogger(__name__)

CONVERSION_NAME = "onnx-cpu"


def default_threads() -> int:
    """One core of two, half of more (up to 4): the LM shares the CPU with TTS and ASR,
    and on 2 cores a 2-thread run collapses when anything else is busy (DESIGN.md)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores // 2)


def _weight_files(model_dir: Path) -> list[Path]:
    files = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    return [*files, model_dir / "config.json"]


def exported_decoder(model_dir: Path, model_id: str | None = None) -> Path:
    """The folder with the ONNX export of ``model_dir``, exporting it the first time."""
    from voicebot.models.conversions import converted

    if model_id is None:  # a local folder: name its cache after the folder and its path
        digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:8]
        model_id = f"local-{model_dir.name}-{digest}"
    return converted(model_id, CONVERSION_NAME, _weight_files(model_dir),
                     partial(onnx_export.export_decoder, model_dir),
                     version=onnx_export.EXPORT_VERSION)


def prepare_cpu_decoder(model_id: str) -> Path:
    """Build (once) the CPU decoder of a catalog chat model; used by `models prepare`."""
    from voicebot.models import resolve

    return exported_decoder(resolve(model_id), model_id)


class OnnxBackend:
    """The exported decoder with its key/value cache in preallocated buffers.

    Each layer's cache is one [1, kv_heads, capacity, head_dim] buffer bound as both the
    past input and the present output, so GroupQueryAttention appends in place; cutting
    the cache back (a new prompt sharing only a prefix) is just a smaller length.
    """

    def __init__(self, export_dir: Path, threads: int | None = None, capacity: int = 2048):
        import onnxruntime as ort

        self.layout = json.loads((export_dir / onnx_export.LAYOUT_FILE).read_text("utf-8"))
        if self.layout.get("export_version") != onnx_export.EXPORT_VERSION:
            raise ValueError(f"{export_dir} was exported by another voicebot version; "
                             "delete it to export again")
        self.threads = threads or default_threads()
        self.capacity = min(capacity, self.layout["max_positions"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(export_dir / onnx_export.MODEL_FILE), options,
                                            providers=["CPUExecutionProvider"])
        shape = (1, self.layout["kv_heads"], self.capacity, self.layout["head_dim"])
        layers = self.layout["layers"]
        self._caches = [
            (past, present, ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32)))
            for past, present in zip(onnx_export.past_names(layers),
                                     onnx_export.present_names(layers), strict=True)]
        weights = self.layout.get("weights", {})
        self.name = "onnxruntime-cpu-" + "+".join(
            f"int{bits.removesuffix('bit')}" for bits, count in sorted(weights.items()) if count)
        self.reused_tokens = 0
        self._ids: list[int] = []

    def _forward(self, ids: Sequence[int]) -> np.ndarray:
        cached, new = len(self._ids), len(ids)
        total = cached + new
        if total > self.capacity:
            raise ValueError(f"the conversation needs {total} tokens; the cache holds "
                             f"{self.capacity}")
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", np.asarray([ids], dtype=np.int64))
        binding.bind_cpu_input("position_ids",
                               np.arange(cached, total, dtype=np.int64)[None, :])
        binding.bind_cpu_input("seqlens_k", np.array([total - 1], dtype=np.int32))
        binding.bind_cpu_input("total_len", np.array(total, dtype=np.int32))
        binding.bind_output("logits", "cpu")
        for past, present, buffer in self._caches:
            binding.bind_ortvalue_input(past, buffer)
            binding.bind_ortvalue_output(present, buffer)
        self.session.run_with_iobinding(binding)
        self._ids.extend(ids)
        return binding.get_outputs()[0].numpy()[0]

    def start(self, ids: Sequence[int], cancel: CancelToken | None = None) -> np.ndarray | None:
        keep = reusable_prefix(self._ids, ids)
        del self._ids[keep:]  # what lies past the kept length is simply overwritten
        self.reused_tokens = keep
        logits = None
        try:
            for begin in range(keep, len(ids), PREFILL_CHUNK):
                if cancel is not None and cancel.is_set():
                    return None
                logits = self._forward(ids[begin:begin + PREFILL_CHUNK])
        except BaseException:
            self.reset()
            raise
        return logits

    def step(self, token: int) -> np.ndarray:
        try:
            return self._forward([token])
        except BaseException:
            self.reset()
            raise

    def reset(self) -> None:
        """Forget the cache (also after an error: it may not match ``_ids`` any more)."""
        self._ids = []
