"""Weight-only quantisation of an ONNX decoder's matrix multiplies (MatMulNBits).

Each MatMul with a constant [K, N] weight becomes ONNX Runtime's MatMulNBits (weights in
blocks of 32 along K, int8 arithmetic on the CPU with ``accuracy_level`` 4), at the
lowest precision that loses nothing the weights still have:

- 4 bits when every block of 32 weights already sits on a grid of at most 16 evenly
  spaced values. That is the case for models converted from a GGUF file (the embedded
  SmolLM2 is Q4_1: value = d * q + m per block). MatMulNBits' integer zero point cannot
  hold Q4_1's float offset ``m``, so it is added back exactly:
  ``x @ W = MatMulNBits(x, q, d) + blocksum(x) @ M`` (M: the offsets, [K/32, N]).
  Re-quantising with a rounded zero point instead measured a mean KL divergence of 0.36
  from the float model (greedy tokens agreeing 70% of the time); the exact form ~0.07
  (what is left is the int8 rounding of activations).
- 8 bits otherwise (float or bf16 weights, Q8_0 embeddings): asymmetric, per block.
  Measured KL 0.004 (94% greedy agreement) on the embedded model.

Speed, CPU time per generated token on one thread of the 2-core dev machine (while it was
busy with other work, so the absolute numbers are pessimistic): 8 bits everywhere ~17-19
ms; 4 bits with a rounded zero point ~12 ms (but the quality loss above); exact 4-bit
layers with explicit zero points and an 8-bit output head ~14 ms. Leaving the zero point
to the kernel's default (8) and folding the 8 steps into the offsets saves ~1 ms per
token; the output head's two passes (``onnx_export``) another ~1.3 ms. ONNX Runtime
1.31's CPU kernel accepts float zero points (which could hold -m/d exactly) but then
de-quantises the whole matrix on every call: 4 ms instead of 0.1 ms for a 576x3072
matmul. Q4_1 re-expressed at 8 bits (offsets rounded to 1/16 step, no correction nodes)
measured slower too (18 vs 14 ms per token).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BLOCK = 32
# MatMulNBits' accuracy_level: 4 quantises each row's activations to int8 per block of 32
# inputs (fast integer arithmetic; a row's result never depends on the other rows), 0
# computes in float32 from de-quantised weights (slower, closer to the float model).
INT8_ACTIVATIONS = 4
FLOAT_ACTIVATIONS = 0
# A weight is "on the grid" when it is this close to it, relative to the grid step:
# GGUF de-quantisation computes d * q + m in float32, so a little rounding is expected.
GRID_TOLERANCE = 1e-3


def four_bit_grid(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(q [N, K/32, 32] uint8 in 0..15, step [N, K/32], offset [N, K/32]) when every block
    of ``weight`` ([K, N]) is exactly offset + step * q; None otherwise."""
    k, n = weight.shape
    blocks = weight.T.reshape(n, k // BLOCK, BLOCK).astype(np.float64)
    low = blocks.min(-1)
    high = blocks.max(-1)
    spread = high - low
    ordered = np.sort(blocks, -1)
    gaps = np.diff(ordered, axis=-1)
    # The grid step is the smallest gap between distinct values in the block.
    gaps = np.where(gaps > spread[..., None] * 1e-4, gaps, np.inf)
    step = gaps.min(-1)
    flat = ~np.isfinite(step)  # all 32 weights equal: any step will do
    step = np.where(flat, 1.0, step)
    levels = np.rint(spread / step)
    if np.any(levels > 15):
        return None
    step = np.where(flat, 1.0, spread / np.maximum(levels, 1))
    q = np.rint((blocks - low[..., None]) / step[..., None])
    error = np.abs(blocks - (low[..., None] + q * step[..., None]))
    if np.any(error > GRID_TOLERANCE * step[..., None] + 1e-7):
        return None
    return q.astype(np.uint8), step.astype(np.float32), low.astype(np.float32)


def pack_four_bit(q: np.ndarray) -> np.ndarray:
    """Two 4-bit values per byte, the first in the low nibble (MatMulNBits' layout)."""
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def eight_bit(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q [N, K/32, 32] uint8, scale [N, K/32], zero point [N, K/32] uint8)."""
    k, n = weight.shape
    blocks = weight.T.reshape(n, k // BLOCK, BLOCK).astype(np.float64)
    low = np.minimum(blocks.min(-1), 0.0)
    high = np.maximum(blocks.max(-1), 0.0)
    scale = np.where(high > low, (high - low) / 255.0, 1.0)
    zero = np.clip(np.rint(-low / scale), 0, 255)
    q = np.clip(np.rint(blocks / scale[..., None] + zero[..., None]), 0, 255)
    return q.astype(np.uint8), scale.astype(np.float32), zero.astype(np.uint8)


def approximate_four_bit(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q [N, K/32, 32] uint8 in 0..15, scale [N, K/32]): ``weight`` ([K, N]) rounded to
    symmetric 4 bits, value = scale * (q - 8). Lossy: only for a first, approximate pass."""
    k, n = weight.shape
    blocks = weight.T.reshape(n, k // BLOCK, BLOCK).astype(np.float64)
    scale = np.maximum(-blocks.min(-1) / 8, blocks.max(-1) / 7)
    scale = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(blocks / scale[..., None]) + 8, 0, 15)
    return q.astype(np.uint8), scale.astype(np.float32)


def _matmul_nbits(x: str, out: str, base: str, bits: int, packed: np.ndarray,
                  scales: np.ndarray, zeros: np.ndarray | None, k: int,
                  n: int, accuracy: int = INT8_ACTIVATIONS) -> tuple[list, list]:
    """One MatMulNBits node and its initializers; no ``zeros``: the kernel's default
    zero point (8 or 128), which is also its fastest path (~15% faster than explicit
    zero points for 4 bits, measured on the 2-core AVX2 dev machine)."""
    from onnx import helper, numpy_helper

    inits = [numpy_helper.from_array(packed, f"{base}_B"),
             numpy_helper.from_array(scales.reshape(-1), f"{base}_scales")]
    inputs = [x, f"{base}_B", f"{base}_scales"]
    if zeros is not None:
        inits.append(numpy_helper.from_array(zeros.reshape(-1), f"{base}_zeros"))
        inputs.append(f"{base}_zeros")
    node = helper.make_node("MatMulNBits", inputs, [out], name=f"{base}_matmul",
                            domain="com.microsoft", K=k, N=n, bits=bits, block_size=BLOCK,
                            accuracy_level=accuracy)
    return [node], inits


def approximate_matmul(x: str, out: str, weight: np.ndarray, base: str) -> tuple[list, list]:
    """Nodes computing roughly ``x @ weight`` with 4-bit weights (``approximate_four_bit``)."""
    k, n = weight.shape
    q, scale = approximate_four_bit(weight)
    return _matmul_nbits(x, out, base, 4, pack_four_bit(q), scale, None, k, n)


def quantized_matmul(x: str, out: str, weight: np.ndarray, base: str,
                     accuracy: int = INT8_ACTIVATIONS) -> tuple[list, list, int]:
    """ONNX nodes computing ``out = x @ weight`` ([K, N]) with quantized weights:
    (nodes, initializers, bits). Node and initializer names start with ``base``;
    ``accuracy``: MatMulNBits' accuracy_level (INT8_ACTIVATIONS or FLOAT_ACTIVATIONS)."""
    from onnx import helper, numpy_helper

    k, n = weight.shape
    grid = four_bit_grid(weight)
    if grid is None:
        q, scale, zero = eight_bit(weight)
        nodes, inits = _matmul_nbits(x, out, base, 8, q, scale, zero, k, n, accuracy)
        return nodes, inits, 8
    q, step, offset = grid
    # The kernel's default zero point 8 reads q as step * (q - 8); the offsets, plus the
    # 8 steps it took away, are added back by the last four nodes.
    nodes, inits = _matmul_nbits(x, f"{base}_main", base, 4, pack_four_bit(q), step, None,
                                 k, n, accuracy)
    offsets = (offset.astype(np.float64) + 8 * step.astype(np.float64)).astype(np.float32)
    inits += [numpy_helper.from_array(np.ascontiguousarray(offsets.T), f"{base}_offsets"),
              numpy_helper.from_array(np.array([0, 0, k // BLOCK, BLOCK], np.int64),
                                      f"{base}_block_shape"),
              numpy_helper.from_array(np.array([-1], np.int64), f"{base}_last_axis")]
    nodes += [
        helper.make_node("Reshape", [x, f"{base}_block_shape"], [f"{base}_blocks"],
                         name=f"{base}_reshape"),
        helper.make_node("ReduceSum", [f"{base}_blocks", f"{base}_last_axis"],
                         [f"{base}_sums"], name=f"{base}_sum", keepdims=0),
        helper.make_node("MatMul", [f"{base}_sums", f"{base}_offsets"], [f"{base}_offset"],
                         name=f"{base}_offset_matmul"),
        helper.make_node("Add", [f"{base}_main", f"{base}_offset"], [out], name=f"{base}_add"),
    ]
    return nodes, inits, 4


def quantize_matmuls(model: Any) -> dict[str, int]:
    """Rewrite ``model`` (an onnx ModelProto) in place: every MatMul with a constant 2-D
    weight becomes ``quantized_matmul``. Returns how many got 4 and 8 bits."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes, unused, added = [], set(), []
    counts = {"4bit": 0, "8bit": 0}
    for node in graph.node:
        weight_name = node.input[1] if node.op_type == "MatMul" else None
        weight = (numpy_helper.to_array(initializers[weight_name])
                  if weight_name in initializers else None)
        if weight is None or weight.ndim != 2 or weight.shape[0] % BLOCK:
            nodes.append(node)
            continue
        base = f"q{sum(counts.values())}_{node.name.strip('/').replace('/', '_')}"
        new_nodes, inits, bits = quantized_matmul(node.input[0], node.output[0], weight, base)
        nodes += new_nodes
        added += inits
        counts[f"{bits}bit"] += 1
        unused.add(weight_name)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [init for init in graph.initializer if init.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend([*kept, *added])
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    log.info("quantized %d matmuls to 4 bits (exact grid) and %d to 8 bits",
             counts["4bit"], counts["8bit"])
    return counts
