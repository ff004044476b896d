"""GGUF files (llama.cpp): our bounded header parser (``gguf_header``), the ``gguf`` package's dequantisers.

Shapes are reported in numpy order (GGUF stores ``ne`` fastest-first, i.e. reversed). ``read`` gives
the tensor as stored: a typed view for float and integer types, the raw block bytes (``uint8``, one
row of blocks per row) for quantised types. ``read_float`` gives float32, dequantised.

llama.cpp's converter reorders the rows of ``attn_q``/``attn_k`` for llama-family rotary embeddings;
both ``read`` and ``read_float`` undo that, so a converted copy compares equal to its Hugging Face
source. Tensor names stay as GGUF spells them (``blk.0.attn_q.weight``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from ..errors import FormatError, UnsupportedError
from .base import TensorFile, TensorInfo
from .gguf_header import GGUFTensor, read_header
from .mapping import open_mapped, take_rows

# GGUF architectures whose HF->GGUF converter permutes Q/K rows (llama.cpp convert_hf_to_gguf.py /
# conversion/*.py): LlamaModel (undo_permute = True) and the subclasses that keep it (Mistral and
# Mixtral converted from HF are written as "llama"; Mistral's own format is already in that order),
# plus converters that call LlamaModel.permute or _reverse_hf_permute themselves. Llama 4, Apertus
# and other LlamaModel subclasses setting undo_permute = False store HF order and are not listed.
PERMUTED_QK_ARCHS = frozenset(
    {
        "llama",
        "mistral3",
        "arcee",
        "smollm3",
        "granite",
        "granitemoe",
        "granitehybrid",
        "llada",
        "deci",
        "internlm2",
        "minicpm",
        "baichuan",
        "xverse",
        "bailingmoe",
        "chameleon",
    }
)
_QK = re.compile(r"^blk\.(\d+)\.attn_(q|k)\.(weight|bias)$")
# GGML integer/float types numpy reads directly -> numpy dtypes; their names are the canonical ones.
_PLAIN = {
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F64": np.dtype(np.float64),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "I32": np.dtype(np.int32),
    "I64": np.dtype(np.int64),
}


def unpermute_rows(array: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of llama.cpp's ``permute``: rows ``(head, half, 2)`` back to HF's ``(head, 2, half)``."""
    rows = array.shape[0]
    return array.reshape(n_head, rows // n_head // 2, 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)


def permute_rows(array: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (HF rotary halves -> interleaved pairs), for exporters."""
    rows = array.shape[0]
    return array.reshape(n_head, 2, rows // n_head // 2, *array.shape[1:]).swapaxes(1, 2).reshape(array.shape)


class GGUFFile(TensorFile):
    """One GGUF file. ``metadata`` holds its key/value pairs (architecture, hyper-parameters, tokenizer)."""

    format = "gguf"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = open_mapped(path)
        header = read_header(self._map, path)
        self._byteorder = header.byteorder
        self.metadata: dict[str, Any] = header.metadata
        self.architecture = self.metadata.get("general.architecture")
        if self.architecture is not None and not isinstance(self.architecture, str):
            raise FormatError(path, "metadata 'general.architecture' is not a string")
        self._tensors = {t.name: t for t in header.tensors}
        self._infos = [self._info(t) for t in header.tensors]

    # -- listing -------------------------------------------------------------------------------
    def _info(self, tensor: GGUFTensor) -> TensorInfo:
        heads = self._qk_heads(tensor.name)
        note = f"rows un-permuted from llama.cpp's rotary order ({heads} heads)" if heads else ""
        return TensorInfo(tensor.name, tensor.shape, tensor.kind.name, tensor.nbytes, self.path, note=note)

    def _qk_heads(self, name: str) -> int | None:
        """The head count to un-permute ``name`` with, or None if it was not permuted."""
        match = _QK.match(name)
        if match is None or self.architecture not in PERMUTED_QK_ARCHS:
            return None
        block = int(match.group(1))
        n_head = _per_layer(self.metadata.get(f"{self.architecture}.attention.head_count"), block)
        n_kv = _per_layer(self.metadata.get(f"{self.architecture}.attention.head_count_kv"), block)
        if n_head is None:
            raise FormatError(
                self.path, f"{self.architecture}.attention.head_count is missing; cannot un-permute {name}"
            )
        return n_kv if match.group(2) == "k" and n_kv else n_head

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    # -- reading -------------------------------------------------------------------------------
    def _stored(self, name: str) -> np.ndarray:
        """A view of the tensor's bytes: typed for plain types, one row of blocks per row otherwise."""
        tensor = self._tensors[name]
        dtype = _PLAIN.get(tensor.kind.name)
        if dtype is None:
            from gguf.quants import quant_shape_to_byte_shape

            return self._map.view(
                tensor.offset, np.dtype(np.uint8), quant_shape_to_byte_shape(tensor.shape, tensor.kind)
            )
        if self._byteorder == ">" and dtype.itemsize > 1:
            if tensor.kind.name == "BF16":
                raise UnsupportedError(self.path, "big-endian bfloat16 tensors")
            dtype = dtype.newbyteorder(">")
        return self._map.view(tensor.offset, dtype, tensor.shape)

    def _unpermute(self, name: str, array: np.ndarray) -> np.ndarray:
        n_head = self._qk_heads(name)
        if n_head is None:
            return array
        if array.shape[0] % (2 * n_head):
            raise FormatError(
                self.path, f"tensor {name!r}: {array.shape[0]} rows do not split into {n_head} rotary heads"
            )
        return unpermute_rows(array, n_head)

    def read(self, name: str) -> np.ndarray:
        return self._unpermute(name, self._stored(name))

    def read_float(self, name: str, index: int | None = None) -> np.ndarray:
        tensor = self._tensors[name]
        data = self._stored(name)
        if index is not None:
            if self._qk_heads(name):
                raise ValueError(f"{name}: rows of a rotary-permuted tensor are not read one by one")
            data = data[index]  # quantised blocks run along the last axis: entries split cleanly
        shape = tensor.shape if index is None else tensor.shape[1:]
        return self._unpermute(name, self._dequantised(name, data, shape))

    def read_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the tensor seen as ``[-1, last axis]``, as float32 in the order ``read``
        gives (rotary rows un-permuted); only those rows' bytes are touched, whole blocks each."""
        tensor = self._tensors[name]
        stored = self._stored(name)
        stored = stored.reshape(-1, stored.shape[-1])
        rows = np.asarray(rows, dtype=np.int64)
        n_head = self._qk_heads(name)
        if n_head is not None and len(tensor.shape) == 2:
            rows = unpermute_rows(np.arange(tensor.shape[0]), n_head)[rows]
        elif n_head is not None:
            raise ValueError(f"{name}: only a matrix's rotary rows can be read one by one")
        return self._dequantised(name, take_rows(stored, rows), (rows.size, tensor.shape[-1]))

    def row_nbytes(self, name: str) -> int:
        """Bytes one row of the last axis takes in the file (whole quantisation blocks)."""
        tensor = self._tensors[name]
        return tensor.nbytes // max(1, math.prod(tensor.shape[:-1]))

    def _dequantised(self, name: str, data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``data`` (stored bytes of a tensor, or of some of its rows) as float32 of ``shape``."""
        from gguf.quants import dequantize

        kind = self._tensors[name].kind
        if kind.name in _PLAIN:
            return data if data.dtype == np.float32 else data.astype(np.float32)
        if data.size == 0:  # no blocks to dequantise
            return np.zeros(shape, np.float32)
        if self._byteorder == ">":
            raise UnsupportedError(self.path, f"tensor {name!r}: big-endian {kind.name} blocks")
        try:
            return dequantize(data, kind)
        except NotImplementedError:
            raise UnsupportedError(
                self.path, f"tensor {name!r}: GGML type {kind.name} cannot be dequantised by gguf"
            ) from None

    def close(self) -> None:
        self._map.close()


def _per_layer(value: Any, block: int) -> int | None:
    """A hyper-parameter that is one integer or, for models like DeciLM, a list with one per layer."""
    if isinstance(value, list):
        value = value[block] if block < len(value) else None
    return int(value) if isinstance(value, int) and value > 0 else None
