"""Dtype names as checkpoints spell them, mapped to numpy dtypes (ml_dtypes for bf16 and fp8)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

# safetensors header spelling -> numpy dtype. Canonical names in TensorInfo use these keys.
SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}

_NAME_OF = {dt: name for name, dt in SAFETENSORS_DTYPES.items()}


def dtype_name(dtype: np.dtype) -> str:
    """The canonical (safetensors-style) name of a numpy dtype, e.g. ``BF16``."""
    dtype = np.dtype(dtype)
    try:
        return _NAME_OF[dtype]
    except KeyError:
        return str(dtype).upper()


def is_float8(dtype_or_name: np.dtype | str) -> bool:
    name = dtype_or_name if isinstance(dtype_or_name, str) else dtype_name(dtype_or_name)
    return name.startswith("F8_")


def to_float32(array: np.ndarray) -> np.ndarray:
    """A float32 view or copy; float32 input is returned as is (no copy of a memory map)."""
    if array.dtype == np.float32:
        return array
    return array.astype(np.float32)
