"""Checkpoint-level dequantisation: FP8 (or int8) weights stored beside their scale tensors.

Two conventions are in the wild:
- ``X.weight_scale_inv`` (DeepSeek-V3 style): one float per block of the weight, typically 128x128;
  the real weight is ``fp8 * scale_inv`` broadcast over each block.
- ``X.weight_scale`` (compressed-tensors, FBGEMM): a scalar, per-row ``[out, 1]`` or ``[out]`` scale;
  the real weight is ``q * scale``.
The scale may live in another shard, which is why this works on the whole checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError
from .dtypes import is_float8

if TYPE_CHECKING:
    from .base import Checkpoint, TensorInfo

SCALE_SUFFIXES = ("_scale_inv", "_scale")
_QUANTISED = ("I8", "U8")


def _is_quantised(info: TensorInfo) -> bool:
    return is_float8(info.dtype) or info.dtype in _QUANTISED


def scale_of(names: set[str] | dict, info: TensorInfo) -> str | None:
    """The name of the scale tensor that dequantises ``info``, if there is one."""
    if not _is_quantised(info):
        return None
    for suffix in SCALE_SUFFIXES:
        candidate = info.name + suffix
        if candidate in names:
            return candidate
    return None


def scale_tensor_names(infos: list[TensorInfo]) -> set[str]:
    """Scale tensors that belong to a quantised weight: not parameters by themselves."""
    names = {info.name for info in infos}
    return {scale for info in infos if (scale := scale_of(names, info))}


def dequantise_with_scales(checkpoint: Checkpoint, name: str) -> np.ndarray | None:
    """``name`` as float32 if it is a quantised weight with a scale tensor, else None."""
    info = checkpoint.info(name)
    scale_name = scale_of(checkpoint._index, info)
    if scale_name is None:
        return None
    weight = checkpoint.read(name).astype(np.float32)
    scale = np.asarray(checkpoint.read(scale_name), dtype=np.float32)
    if scale.size == 1:
        return weight * scale.reshape(())
    if scale_name.endswith("_scale_inv") and weight.ndim == 2 and scale.ndim == 2:
        return _apply_block_scale(checkpoint, name, weight, scale)
    if weight.ndim >= 1 and scale.size == weight.shape[0]:
        return weight * scale.reshape((weight.shape[0],) + (1,) * (weight.ndim - 1))
    raise FormatError(
        info.file, f"tensor {name!r}: scale {scale_name!r} of shape {scale.shape} fits no known scheme"
    )


def _apply_block_scale(
    checkpoint: Checkpoint, name: str, weight: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    rows, cols = weight.shape
    block_r, block_c = _block_size(checkpoint, name, weight.shape, scale.shape)
    expanded = np.repeat(np.repeat(scale, block_r, axis=0), block_c, axis=1)[:rows, :cols]
    return weight * expanded


def _block_size(
    checkpoint: Checkpoint, name: str, shape: tuple[int, ...], scale_shape: tuple[int, ...]
) -> tuple[int, int]:
    """The block of one scale: the config's ``weight_block_size``, else DeepSeek's 128 x 128, else
    what the shapes imply. Shapes alone are ambiguous when the edge blocks are partial (300 rows and
    3 scale rows fit blocks of 100 and of 128), hence the order."""
    rows, cols = shape
    srows, scols = scale_shape
    config = checkpoint.config() or {}
    text_config = config.get("text_config")
    quant = config.get("quantization_config") or (
        text_config.get("quantization_config") if isinstance(text_config, dict) else None
    )
    declared = quant.get("weight_block_size") if isinstance(quant, dict) else None
    candidates = [(128, 128), (-(-rows // srows), -(-cols // scols))]
    if (
        isinstance(declared, list)
        and len(declared) == 2
        and all(isinstance(b, int) and b > 0 for b in declared)
    ):
        candidates.insert(0, (declared[0], declared[1]))
    for block_r, block_c in candidates:
        if -(-rows // block_r) == srows and -(-cols // block_c) == scols:
            return block_r, block_c
    raise FormatError(
        checkpoint.info(name).file,
        f"tensor {name!r}: block scale {tuple(scale_shape)} does not tile {tuple(shape)}",
    )
