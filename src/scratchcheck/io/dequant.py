"""Checkpoint-level dequantisation: weights stored as quantised data beside their scale tensors.

Three conventions are in the wild:
- ``X.weight_scale_inv`` (DeepSeek-V3 style): one float per block of the weight, typically 128x128;
  the real weight is ``fp8 * scale_inv`` broadcast over each block.
- ``X.weight_scale`` (compressed-tensors, FBGEMM): a scalar, per-row ``[out, 1]`` or ``[out]`` scale;
  the real weight is ``q * scale``.
- ``X_blocks`` + ``X_scales`` (MXFP4, GPT-OSS's experts): uint8 ``[..., G, 16]`` holding two 4-bit
  e2m1 values per byte (low nibble first) and uint8 ``[..., G]`` exponents, each block of 32 values
  times ``2 ** (scale - 127)``. ``X`` itself is listed as a tensor of dtype ``MXFP4``; a stack of
  experts ``[E, out, G, 16]`` is given as ``[E, in, out]``, the layout transformers loads it in.
The scale may live in another shard, which is why this works on the whole checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import FormatError
from .base import TensorFile, TensorInfo
from .dtypes import is_float8

if TYPE_CHECKING:
    from .base import Checkpoint

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


@dataclass(frozen=True)
class ScaleScheme:
    """How a scale tensor covers its weight: the scale of weight element ``(i, j, ...)`` is entry
    ``(i // block[0], j // block[1], ...)`` of the scale (one scalar: ``block`` is empty). Shared
    by the whole-tensor read and the read of a few kept rows, so both dequantise alike."""

    scale: str
    block: tuple[int, ...]

    def positions(self, index: tuple[np.ndarray, ...], stored_ndim: int) -> tuple[np.ndarray, ...]:
        """The scale entries that weight indices ``index`` (sorted, per axis) use, per axis of the
        stored scale (a per-row scale stored ``[out, 1]`` has one more axis than it applies to)."""
        used = tuple(np.unique(i // b) for i, b in zip(index, self.block, strict=False))
        return used + (np.zeros(1, np.int64),) * (stored_ndim - len(used))

    def apply(self, weight: np.ndarray, scale: np.ndarray, index: tuple[np.ndarray, ...]) -> np.ndarray:
        """``weight`` (float32: the elements at ``index`` per axis) times its scales; ``scale`` holds
        the entries at ``positions(index)``."""
        used = self.positions(index, len(self.block))
        scale = scale.reshape(tuple(u.size for u in used))
        picks = [np.searchsorted(u, i // b) for u, i, b in zip(used, index, self.block, strict=False)]
        # Indexing, not np.repeat: a declared block of 10**12 must not expand the scales 10**12 times.
        per_element = scale[np.ix_(*picks)] if picks else scale
        return weight * per_element.reshape(per_element.shape + (1,) * (weight.ndim - len(picks)))


def scale_scheme(checkpoint: Checkpoint, name: str) -> ScaleScheme | None:
    """How ``name``'s scale tensor applies, if it is a quantised weight with one (from headers)."""
    info = checkpoint.info(name)
    scale_name = scale_of(checkpoint._index, info)
    if scale_name is None:
        return None
    scale = checkpoint.info(scale_name).shape
    size = int(np.prod(scale, dtype=np.int64))
    if size == 1:
        return ScaleScheme(scale_name, ())
    if scale_name.endswith("_scale_inv") and len(info.shape) == 2 and len(scale) == 2:
        return ScaleScheme(scale_name, _block_size(checkpoint, name, info.shape, scale))
    if info.shape and size == info.shape[0]:
        return ScaleScheme(scale_name, (1,))
    raise FormatError(
        info.file, f"tensor {name!r}: scale {scale_name!r} of shape {scale} fits no known scheme"
    )


def dequantise_with_scales(checkpoint: Checkpoint, name: str) -> np.ndarray | None:
    """``name`` as float32 if it is a quantised weight with a scale tensor, else None."""
    scheme = scale_scheme(checkpoint, name)
    if scheme is None:
        return None
    weight = checkpoint.read(name).astype(np.float32)
    scale = np.asarray(checkpoint.read(scheme.scale), dtype=np.float32)
    return scheme.apply(weight, scale, tuple(np.arange(n) for n in weight.shape))


def _block_size(
    checkpoint: Checkpoint, name: str, shape: tuple[int, ...], scale_shape: tuple[int, ...]
) -> tuple[int, int]:
    """The block of one scale: the config's ``weight_block_size``, else DeepSeek's 128 x 128, else
    what the shapes imply. Shapes alone are ambiguous when the edge blocks are partial (300 rows and
    3 scale rows fit blocks of 100 and of 128), hence the order."""
    rows, cols = shape
    srows, scols = scale_shape
    if not (rows and cols and srows and scols):
        raise FormatError(
            checkpoint.info(name).file,
            f"tensor {name!r}: block scale {tuple(scale_shape)} of a {tuple(shape)} weight is empty",
        )
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


# e2m1: sign, two exponent bits, one mantissa bit; the 16 codes in order.
FP4_E2M1 = np.array(
    [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0], np.float32
)
_BLOCKS, _SCALES = "_blocks", "_scales"


def mxfp4_tensors(checkpoint: Checkpoint) -> Mxfp4Tensors | None:
    """The MXFP4 weights of ``checkpoint`` (each ``X_blocks`` with its ``X_scales``), if any."""
    found = {}
    for info in checkpoint.tensors():
        name = info.name.removesuffix(_BLOCKS)
        scales = name + _SCALES
        if name == info.name or info.dtype != "U8" or scales not in checkpoint or name in checkpoint:
            continue
        scale_info = checkpoint.info(scales)
        if scale_info.dtype != "U8" or len(info.shape) < 2 or info.shape[-1] != 16:
            continue
        if scale_info.shape != info.shape[:-1]:
            raise FormatError(
                scale_info.file,
                f"MXFP4 scales {scales!r} {list(scale_info.shape)} do not match blocks {info.name!r} {list(info.shape)}",
            )
        found[name] = (info, scale_info)
    return Mxfp4Tensors(checkpoint, found) if found else None


class Mxfp4Tensors(TensorFile):
    """The dequantised view of a checkpoint's MXFP4 weights (they have no stored array of their own)."""

    format = "mxfp4"

    def __init__(self, checkpoint: Checkpoint, pairs: dict[str, tuple[TensorInfo, TensorInfo]]) -> None:
        self.checkpoint = checkpoint
        self.pairs = pairs
        self.path = next(iter(pairs.values()))[0].file

    def infos(self) -> list[TensorInfo]:
        return [self._info(name, blocks, scales) for name, (blocks, scales) in self.pairs.items()]

    @staticmethod
    def _info(name: str, blocks: TensorInfo, scales: TensorInfo) -> TensorInfo:
        *rows, groups, _ = blocks.shape
        shape = (*rows, groups * 32)
        if presented_in_out(blocks):
            shape = (shape[0], shape[2], shape[1])
        stem = name.rsplit(".", 1)[-1]
        note = f"MXFP4 from {stem}{_BLOCKS} and {stem}{_SCALES}: e2m1 values x 2^(scale-127) per 32"
        return TensorInfo(name, shape, "MXFP4", blocks.nbytes + scales.nbytes, blocks.file, note=note)

    def read(self, name: str) -> np.ndarray:
        return self.read_float(name)

    def read_float(self, name: str, index: int | None = None) -> np.ndarray:
        blocks_info, scales_info = self.pairs[name]
        blocks = self.checkpoint.read(blocks_info.name)
        scales = self.checkpoint.read(scales_info.name)
        if index is not None:
            blocks, scales = blocks[index], scales[index]
        values = decode_mxfp4(blocks, scales)
        return np.swapaxes(values, -1, -2) if presented_in_out(blocks_info) else values


def presented_in_out(blocks: TensorInfo) -> bool:
    """Whether the MXFP4 weight of ``blocks`` is given as ``[E, in, out]``: an expert stack
    ``[E, out, in]``, transposed to the layout transformers loads it in."""
    return len(blocks.shape) == 4


def decode_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """uint8 blocks ``[..., G, 16]`` and exponents ``[..., G]`` as float32 ``[..., G * 32]``."""
    values = np.empty((*blocks.shape[:-1], 32), np.float32)
    values[..., 0::2] = FP4_E2M1[blocks & 0x0F]
    values[..., 1::2] = FP4_E2M1[blocks >> 4]
    values = np.ldexp(values, scales.astype(np.int32)[..., None] - 127)
    return values.reshape(*values.shape[:-2], -1)
