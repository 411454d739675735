"""One-token decoding replayed as a CUDA graph over a static KV cache (the CUDA path).

A small chat model on a GPU is bound by kernel launches, not arithmetic: an eager
forward of SmolLM2-135M launches several hundred kernels for one token, ~30-80 ms on an
H100 from Python, while the GPU work itself is about a millisecond. Capturing the decode
step once and replaying it removes the launch cost (measured on an H100: eager ~12-38
tokens/s, replayed ~270).

The graph reads its inputs from, and writes the logits to, fixed tensors, and the
transformers ``StaticCache`` keeps every layer's keys and values in fixed tensors too, so
one capture serves every later step of every turn. Cache slots past the current position
hold stale values from earlier, longer turns; the causal mask built from the position
(``cache_position``) hides them, so reusing a prompt prefix needs no crop, only moving
each layer's write position back (``_seek``): transformers 5's static layers write at
their own running length, not at ``cache_position``.

Whether the captured graph is faithful depends on the transformers version (an older
mask shortcut could decide at capture time that no mask was needed), so
``graphed_decoder`` captures at load time on a probe prompt and compares the replay with
plain eager decoding on a DynamicCache; the backend keeps eager decoding when they differ.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Largest |logit| difference between the replayed graph and plain eager decoding that
# still counts as the same computation: bfloat16 rounding through other attention
# kernels moves logits by ~0.1; a missing mask moves them by ~10-20 (seen on an H100).
FAITHFUL_TOLERANCE = 1.0


class GraphedDecoder:
    """Prefill eagerly into a StaticCache; decode single tokens by replaying one graph."""

    def __init__(self, model: Any, capacity: int) -> None:
        import torch
        from transformers import StaticCache

        self.model = model
        self.capacity = capacity
        self.device = next(model.parameters()).device
        self.cache = StaticCache(config=model.config, max_cache_len=capacity)
        self._token = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        self._position = torch.zeros(1, dtype=torch.long, device=self.device)
        self._graph: Any = None
        self._logits: Any = None

    def _check_room(self, end: int) -> None:
        if end > self.capacity:
            raise ValueError(f"the conversation needs {end} tokens of context but the "
                             f"chat model's cache holds {self.capacity}")

    def forward(self, ids: Sequence[int], start: int) -> np.ndarray:
        """Run ``ids`` eagerly at positions ``start``..; logits after the last one."""
        import torch

        self._check_room(start + len(ids))
        self._seek(start)
        tensor = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        positions = torch.arange(start, start + len(ids), device=self.device)
        out = self.model(input_ids=tensor, past_key_values=self.cache,
                         cache_position=positions, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float().cpu().numpy()

    def step(self, token: int, position: int) -> np.ndarray:
        """Logits after ``token`` at ``position`` (the cache holds everything before)."""
        self._check_room(position + 1)
        self._seek(position)
        self._token.fill_(token)
        self._position.fill_(position)
        if self._graph is None:
            return self._capture()
        self._graph.replay()
        return self._logits[0, -1].float().cpu().numpy()

    def _seek(self, position: int) -> None:
        """Make every layer write its next keys and values at ``position``."""
        for layer in getattr(self.cache, "layers", ()):
            length = getattr(layer, "cumulative_length", None)
            if hasattr(length, "fill_"):  # a tensor on the device, read by the graph
                length.fill_(position)
            elif isinstance(length, int):
                layer.cumulative_length = position

    def _run_step(self) -> Any:
        return self.model(input_ids=self._token, past_key_values=self.cache,
                          cache_position=self._position, use_cache=True,
                          logits_to_keep=1).logits

    def _capture(self) -> np.ndarray:
        """Run the step eagerly (allocator and kernel warm-up, on a side stream as CUDA
        graphs require), capture it and replay it. The eager run and the replay write the
        same keys and values at the same position."""
        import torch

        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._run_step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            logits = self._run_step()
        self._graph, self._logits = graph, logits
        graph.replay()
        return logits[0, -1].float().cpu().numpy()


def _eager_reference(model: Any, probe: Sequence[int], steps: Sequence[int]) -> list[Any]:
    """Logits of plain eager decoding (DynamicCache): after the probe, then each step."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    out = []
    for ids in [list(probe), *[[t] for t in steps]]:
        result = model(input_ids=torch.tensor([ids], device=device), past_key_values=cache,
                       use_cache=True, logits_to_keep=1)
        out.append(result.logits[0, -1].float().cpu().numpy())
    return out


def graphed_decoder(model: Any, capacity: int,
                    probe: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8)) -> GraphedDecoder | None:
    """A captured decoder that matches eager decoding on a probe, else None (logged).

    Call under ``torch.inference_mode()``."""
    steps = [9, 10, 11]
    try:
        reference = _eager_reference(model, probe, steps)
        decoder = GraphedDecoder(model, capacity)
        got = [decoder.forward(probe, 0)]
        got += [decoder.step(t, len(probe) + i) for i, t in enumerate(steps)]
    except Exception as exc:  # capture is refused by some drivers/models: stay eager
        log.warning("chat model decodes eagerly on CUDA: the decode step could not be "
                    "captured as a CUDA graph (%s)", exc)
        return None
    difference = max(float(np.abs(a - b).max()) for a, b in zip(reference, got, strict=True))
    if not difference <= FAITHFUL_TOLERANCE:
        log.warning("chat model decodes eagerly on CUDA: the captured decode step differs "
                    "from eager decoding by %.3g (transformers %s)", difference,
                    _transformers_version())
        return None
    log.info("chat model decode step runs as a CUDA graph (matches eager to %.2g)",
             difference)
    return decoder


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
