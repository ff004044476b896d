"""Write safetensors files (for the demo, the miniature models and the benchmarks).

Tensors may be given lazily (``LazyTensor``) so that a multi-GB file is written one tensor at a time.
The file appears atomically: it is written beside its destination and renamed when complete.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dtypes import dtype_name


@dataclass(frozen=True)
class LazyTensor:
    shape: tuple[int, ...]
    dtype: np.dtype
    make: Callable[[], np.ndarray]


def write_safetensors(
    path: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray | LazyTensor],
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``tensors`` to ``path`` in safetensors layout, in the mapping's order."""
    path = Path(path)
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, value in tensors.items():
        dtype = np.dtype(value.dtype)
        nbytes = int(np.prod(value.shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {
            "dtype": dtype_name(dtype),
            "shape": list(value.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep the data buffer 8-byte aligned, as the reference writer does
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "wb") as handle:
            handle.write(struct.pack("<Q", len(blob)))
            handle.write(blob)
            for value in tensors.values():
                array = value.make() if isinstance(value, LazyTensor) else value
                handle.write(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
