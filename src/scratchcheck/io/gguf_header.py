"""The GGUF header (key/value metadata and tensor infos), parsed with every count bounded by the file.

The ``gguf`` package's reader builds one numpy object per array element, recurses into nested arrays
without a limit and trusts counts that overshoot the file (a 1 MB file took 27 s and 805 MB). Here
numeric arrays are read in one call, each count is checked against the bytes left before anything
is read, nesting stops at ``MAX_NESTING`` and the header at ``MAX_GGUF_HEADER_BYTES``.

Layout: magic ``GGUF``, version (u32), tensor count (u64), key/value count (u64), the key/value
pairs, the tensor infos (name, rank, dims fastest-first, type, offset), then tensor data from the
next multiple of ``general.alignment`` (32 by default).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from ..errors import FormatError, UnsupportedError
from .limits import MAX_GGUF_HEADER_BYTES, MAX_NESTING, MAX_RANK, tensor_bytes
from .mapping import MappedFile

# GGUF value type -> numpy dtype code of a scalar; 8 is a string and 9 an array.
_SCALARS = {
    0: "u1",
    1: "i1",
    2: "u2",
    3: "i2",
    4: "u4",
    5: "i4",
    6: "f4",
    7: "?",
    10: "u8",
    11: "i8",
    12: "f8",
}
_STRING, _ARRAY = 8, 9
_MIN_BYTES = {_STRING: 8, _ARRAY: 12}  # the fewest bytes one value of these types takes
_DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # numpy order (GGUF stores the fastest dimension first)
    kind: GGMLQuantizationType
    offset: int  # of the data in the file
    nbytes: int


@dataclass(frozen=True)
class GGUFHeader:
    byteorder: str  # "<" or ">"
    metadata: dict[str, Any]
    tensors: list[GGUFTensor]


class _Cursor:
    """Reads the header front to back from the mapping, refusing to step past its end."""

    def __init__(self, mapped: MappedFile, path: Path) -> None:
        self.path, self.pos = path, 0
        size = min(mapped.size, MAX_GGUF_HEADER_BYTES)
        self.buffer = mapped.view(0, np.dtype(np.uint8), (size,)).data
        self.limited = mapped.size > MAX_GGUF_HEADER_BYTES
        self.order = "<"

    def need(self, count: int, what: str) -> None:
        if count > len(self.buffer) - self.pos:
            if self.limited:
                raise FormatError(
                    self.path, f"GGUF header is larger than the {MAX_GGUF_HEADER_BYTES}-byte limit"
                )
            raise FormatError(
                self.path,
                f"not a valid GGUF file (truncated or corrupt header: {what} would run past the end of the file)",
            )

    def dtype(self, code: str) -> np.dtype:
        return np.dtype(code) if code == "?" else np.dtype(self.order + code)

    def scalar(self, code: str, what: str) -> Any:
        unpack = _structs(self.order)[code]  # a header holds ~10^5 scalars: no numpy per value
        self.need(unpack.size, what)
        (value,) = unpack.unpack_from(self.buffer, self.pos)
        self.pos += unpack.size
        return value

    def text(self, what: str, errors: str = "replace") -> str:
        length = self.scalar("u8", what)
        self.need(length, what)
        raw = bytes(self.buffer[self.pos : self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8", errors)
        except UnicodeDecodeError:
            raise FormatError(self.path, f"{what} is not valid UTF-8") from None

    def value(self, kind: int, what: str, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind], what)
        if kind == _STRING:
            return self.text(what)
        if kind != _ARRAY:
            raise FormatError(self.path, f"{what} has unknown value type {kind}")
        if depth >= MAX_NESTING:
            raise FormatError(self.path, f"{what} nests arrays deeper than {MAX_NESTING} levels")
        element, count = self.scalar("u4", what), self.scalar("u8", what)
        if element in _SCALARS:
            dtype = self.dtype(_SCALARS[element])
            self.need(count * dtype.itemsize, f"{what} ({count} elements)")
            values = np.frombuffer(self.buffer, dtype, count, self.pos).tolist()
            self.pos += count * dtype.itemsize
            return values
        self.need(count * _MIN_BYTES.get(element, 0), f"{what} ({count} elements)")
        if element == _STRING:  # a tokenizer's vocabulary: ~10^5 strings
            return [self.text(what) for _ in range(count)]
        return [self.value(element, what, depth + 1) for _ in range(count)]


@cache
def _structs(order: str) -> dict[str, struct.Struct]:
    """A ``struct`` for each scalar code of ``_SCALARS``, in byte order ``order``."""
    letters = {"u1": "B", "i1": "b", "u2": "H", "i2": "h", "u4": "I", "i4": "i", "f4": "f", "?": "?"}
    letters |= {"u8": "Q", "i8": "q", "f8": "d"}
    return {code: struct.Struct(order + letter) for code, letter in letters.items()}


def read_header(mapped: MappedFile, path: Path) -> GGUFHeader:
    """Metadata and tensor infos of a GGUF file; one-line errors for anything inconsistent."""
    cursor = _Cursor(mapped, path)
    cursor.need(4, "the magic number")
    if bytes(cursor.buffer[:4]) != b"GGUF":
        raise FormatError(path, "not a valid GGUF file (no GGUF magic number)")
    cursor.pos = 4
    version = cursor.scalar("u4", "the version")
    if version & 0xFFFF == 0:  # written on a big-endian machine
        cursor.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
    if version == 1:
        raise UnsupportedError(path, "GGUF version 1 (versions 2 and 3 are read)")
    if version not in (2, 3):
        raise FormatError(path, f"not a valid GGUF file (version {version})")
    n_tensors, n_kv = cursor.scalar("u8", "the tensor count"), cursor.scalar("u8", "the key count")
    cursor.need(n_kv * 13 + n_tensors * 24, f"{n_kv} keys and {n_tensors} tensor infos")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cursor.text("a metadata key", errors="strict")
        if key in metadata:
            raise FormatError(path, f"metadata key {key!r} appears twice")
        metadata[key] = cursor.value(cursor.scalar("u4", f"metadata {key!r}"), f"metadata {key!r}")
    infos = [_tensor_info(cursor) for _ in range(n_tensors)]
    alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise FormatError(path, f"general.alignment {alignment!r} is not a power of two")
    data_start = -(-cursor.pos // alignment) * alignment
    tensors: dict[str, GGUFTensor] = {}
    for name, dims, kind, offset in infos:
        if name in tensors:
            raise FormatError(path, f"tensor {name!r} appears twice")
        tensors[name] = _tensor(path, name, dims, kind, data_start + offset, mapped.size)
    return GGUFHeader(cursor.order, metadata, list(tensors.values()))


def _tensor_info(cursor: _Cursor) -> tuple[str, tuple[int, ...], int, int]:
    name = cursor.text("a tensor name", errors="strict")
    rank = cursor.scalar("u4", f"tensor {name!r}")
    if rank > MAX_RANK:
        raise FormatError(cursor.path, f"tensor {name!r}: rank {rank} is over {MAX_RANK}")
    dims = tuple(cursor.scalar("u8", f"tensor {name!r}") for _ in range(rank))
    return name, dims, cursor.scalar("u4", f"tensor {name!r}"), cursor.scalar("u8", f"tensor {name!r}")


def _tensor(path: Path, name: str, dims: tuple[int, ...], kind: int, offset: int, size: int) -> GGUFTensor:
    try:
        quant = GGMLQuantizationType(kind)
        block, type_size = GGML_QUANT_SIZES[quant]
    except (ValueError, KeyError):
        raise UnsupportedError(
            path, f"tensor {name!r}: tensor type {kind} is unknown to gguf (the package)"
        ) from None
    shape = tuple(reversed(dims))
    numel = tensor_bytes(path, name, shape, 1)
    if shape and shape[-1] % block:
        raise FormatError(
            path, f"tensor {name!r}: rows of {shape[-1]} do not split into {quant.name} blocks of {block}"
        )
    nbytes = numel // block * type_size
    if nbytes and offset + nbytes > size:
        raise FormatError(
            path, f"truncated: tensor {name!r} needs bytes up to {offset + nbytes}, the file has {size}"
        )
    return GGUFTensor(name, shape, quant, offset, nbytes)
