"""Read the variables of a CTranslate2 ``model.bin`` into numpy arrays.

The file is a flat little-endian record stream (binary version 6 here):

    u32 binary_version, string spec_name, u32 spec_revision,
    u32 n_variables, then per variable:
        string name, u8 rank, u32 dim * rank, u8 dtype_id, u32 n_bytes, raw bytes
    u32 n_aliases, then per alias: string alias_name, string target_name

where ``string`` is a u16 length (including a trailing NUL) followed by UTF-8 bytes.
dtype ids follow CTranslate2's DataType enum: float32, int8, int16, int32, float16,
bfloat16. Quantised weights come with a ``<name>_scale`` variable; ``dequantize`` turns
them back into float32 (quantized = round(float * scale), per row for int8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

SUPPORTED_BINARY_VERSIONS = (5, 6)
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class Ct2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


@dataclass
class Ct2Model:
    spec_name: str
    spec_revision: int
    binary_version: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray:
        """A variable by name, following aliases (e.g. a tied output projection)."""
        seen = set()
        while name in self.aliases:
            if name in seen:
                raise Ct2FormatError(f"alias cycle at {name}")
            seen.add(name)
            name = self.aliases[name]
        try:
            return self.variables[name]
        except KeyError:
            raise KeyError(f"CTranslate2 model has no variable {name!r}") from None

    def float_weight(self, name: str) -> np.ndarray:
        """A weight as float32, dequantised if the model stores it as int8/int16."""
        value = self.get(name)
        scale_name = f"{name}_scale"
        if value.dtype in (np.int8, np.int16) and scale_name in self.variables:
            return dequantize(value, self.variables[scale_name])
        if value.dtype.kind != "f":
            raise Ct2FormatError(f"{name} is {value.dtype} with no scale to dequantise it")
        return value.astype(np.float32)


def dequantize(values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return values / float(scale.reshape(-1)[0])
    # int8 scales are one per output row.
    return values / scale.reshape((-1,) + (1,) * (values.ndim - 1))


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise Ct2FormatError("file ends in the middle of a record (truncated download?)")
    return data


def _u(fh: BinaryIO, fmt: str) -> int:
    return struct.unpack("<" + fmt, _read_exact(fh, struct.calcsize(fmt)))[0]


def _string(fh: BinaryIO) -> str:
    length = _u(fh, "H")
    raw = _read_exact(fh, length)
    return raw.rstrip(b"\0").decode("utf-8")


def _array(raw: bytes, dtype_name: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_name == "bfloat16":
        # numpy has no bfloat16: it is the top half of a float32.
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype_name).newbyteorder("<")).reshape(shape)


def read_ct2_model(path: str | Path) -> Ct2Model:
    path = Path(path)
    with open(path, "rb") as fh:
        version = _u(fh, "I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise Ct2FormatError(
                f"{path}: CTranslate2 binary version {version} is not supported "
                f"(known: {SUPPORTED_BINARY_VERSIONS})")
        model = Ct2Model(spec_name=_string(fh), spec_revision=_u(fh, "I"),
                         binary_version=version)
        for _ in range(_u(fh, "I")):
            name = _string(fh)
            rank = _u(fh, "B")
            shape = tuple(_u(fh, "I") for _ in range(rank))
            dtype_id = _u(fh, "B")
            if dtype_id >= len(_DTYPES):
                raise Ct2FormatError(f"{name}: unknown dtype id {dtype_id}")
            n_bytes = _u(fh, "I")
            dtype_name = _DTYPES[dtype_id]
            expected = int(np.prod(shape, dtype=np.int64)) * (
                2 if dtype_name == "bfloat16" else np.dtype(dtype_name).itemsize)
            if n_bytes != expected:
                raise Ct2FormatError(f"{name}: {n_bytes} bytes for shape {shape} {dtype_name}")
            model.variables[name] = _array(_read_exact(fh, n_bytes), dtype_name, shape)
        for _ in range(_u(fh, "I")):
            alias = _string(fh)
            model.aliases[alias] = _string(fh)
    return model
