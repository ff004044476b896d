"""The kept elements of a quantised tensor, read alone: only the kept rows of its quantised data and
the scale entries those rows use are read (and counted), then dequantised the way ``io.dequant``
dequantises the whole tensor, so the values equal those sampled from the whole dequantised tensor.

Covers int8 / FP8 with one scale, a scale per row or a scale per block (``X.weight_scale``,
``X.weight_scale_inv``), and MXFP4 (``X_blocks`` + ``X_scales``). An MXFP4 expert stack presented
as ``[E, in, out]`` is stored ``[E, out, in]``: its stored rows are the presented tensor's kept
*columns*, each read whole (its 4-bit blocks and their exponents). GGUF has its own row reader.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io.base import Checkpoint, TensorFile, TensorInfo
from ..io.dequant import Mxfp4Tensors, decode_mxfp4, presented_in_out, scale_scheme
from ..io.dtypes import SAFETENSORS_DTYPES
from ..io.mapping import locate
from .sampling import Positions, read_positions


def read_kept_quantised(
    checkpoint: Checkpoint, info: TensorInfo, positions: Positions
) -> tuple[np.ndarray, int] | None:
    """(kept values as float32, bytes read for them), or None when ``info`` is not a quantised
    tensor of these kinds or its stored bytes cannot be reached by range reads."""
    tensor_file = checkpoint.file_of(info.name)
    if isinstance(tensor_file, Mxfp4Tensors):
        return _mxfp4(checkpoint, *tensor_file.pairs[info.name], positions)
    if type(tensor_file).read_float is not TensorFile.read_float:
        return None  # the format dequantises its own tensors first (ONNX's zero points, GGUF)
    scheme = scale_scheme(checkpoint, info.name)
    if scheme is None:
        return None
    scale_info = checkpoint.info(scheme.scale)
    scale_at = scheme.positions(positions, len(scale_info.shape)) if scale_info.shape else None
    weight, scale = _read(checkpoint, info, positions), _read(checkpoint, scale_info, scale_at)
    if weight is None or scale is None:
        return None
    values = scheme.apply(weight[0].astype(np.float32), np.asarray(scale[0], np.float32), positions)
    return values, weight[1] + scale[1]


def _mxfp4(
    checkpoint: Checkpoint, blocks: TensorInfo, scales: TensorInfo, positions: Positions
) -> tuple[np.ndarray, int] | None:
    *rows_shape, groups, width = blocks.shape
    in_out = presented_in_out(blocks)
    rows = (*positions[:-2], positions[-1]) if in_out else positions[:-1]
    columns = positions[-2] if in_out else positions[-1]
    # Each stored row of blocks is contiguous: read as one row of groups * 16 bytes.
    data = _read(checkpoint, blocks, (*rows, np.arange(groups * width)), (*rows_shape, groups * width))
    exponents = _read(checkpoint, scales, (*rows, np.arange(groups)))
    if data is None or exponents is None:
        return None
    values = decode_mxfp4(data[0].reshape(*data[0].shape[:-1], groups, width), exponents[0])[..., columns]
    return (np.swapaxes(values, -1, -2) if in_out else values), data[1] + exponents[1]


def _read(
    checkpoint: Checkpoint,
    info: TensorInfo,
    positions: Positions | None,
    shape: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, int] | None:
    """(the stored values of ``info`` at ``positions``, seen as ``shape``; bytes read), or None."""
    located = stored_bytes(checkpoint, info.name)
    dtype = SAFETENSORS_DTYPES.get(info.dtype)
    if located is None or dtype is None:
        return None
    reader, offset = located
    return read_positions(reader, offset, shape or info.shape, dtype, positions)


def stored_bytes(checkpoint: Checkpoint, name: str) -> tuple[Any, int] | None:
    """(range reader, byte offset) of tensor ``name``'s stored bytes, or None where they are not
    one contiguous stretch of a file."""
    tensor_file = checkpoint.file_of(name)
    if hasattr(tensor_file, "byte_source"):
        return tensor_file.byte_source(name)
    return locate(tensor_file.read(name))
