"""GGUF files (llama.cpp), through the ``gguf`` package's reader and dequantisers.

Shapes are reported in numpy order (GGUF stores ``ne`` fastest-first, i.e. reversed). ``read`` gives
the tensor as stored: a typed view for float and integer types, the raw block bytes (``uint8``, one
row of blocks per row) for quantised types. ``read_float`` gives float32, dequantised.

llama.cpp's converter reorders the rows of ``attn_q``/``attn_k`` for llama-family rotary embeddings;
both ``read`` and ``read_float`` undo that, so a converted copy compares equal to its Hugging Face
source. Tensor names stay as GGUF spells them (``blk.0.attn_q.weight``).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from ..errors import FormatError, NotFoundError, UnsupportedError
from .base import TensorFile, TensorInfo

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
# GGML integer/float types numpy reads directly -> canonical names.
_PLAIN = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "F64": "F64",
    "I8": "I8",
    "I16": "I16",
    "I32": "I32",
    "I64": "I64",
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
        if not path.is_file():
            raise NotFoundError(path, "file not found")
        from gguf import GGUFReader

        try:
            self._reader = GGUFReader(path, "r")
        except ValueError as exc:
            message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            if "GGMLQuantizationType" in message:
                raise UnsupportedError(
                    path, f"tensor type unknown to gguf (the package): {message}"
                ) from None
            if message.startswith(("cannot reshape array", "When changing to a larger dtype")):
                # numpy, as the reader views each tensor's bytes: fewer bytes than the header's shape.
                raise FormatError(
                    path,
                    f"truncated or corrupt: tensor data does not match the shapes in the header "
                    f"(the file has {path.stat().st_size} bytes)",
                ) from None
            raise FormatError(path, f"not a valid GGUF file: {message}") from None
        except (IndexError, KeyError, OverflowError, UnicodeDecodeError, TypeError) as exc:
            raise FormatError(
                path, f"not a valid GGUF file (truncated or corrupt header: {exc.__class__.__name__})"
            ) from None
        except OSError as exc:
            raise NotFoundError(path, f"cannot open: {exc.strerror}") from None
        self.architecture = self._scalar("general.architecture")
        self._tensors = {t.name: t for t in self._reader.tensors}
        self._infos = [self._check(t) for t in self._reader.tensors]

    # -- metadata ------------------------------------------------------------------------------
    def _scalar(self, key: str) -> Any:
        field = self._reader.get_field(key)
        if field is None:
            return None
        try:
            return field.contents()
        except (UnicodeDecodeError, IndexError, ValueError):
            raise FormatError(self.path, f"metadata {key!r} cannot be decoded") from None

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """Every key/value pair of the header (``GGUF.*`` bookkeeping fields left out)."""
        return {key: self._scalar(key) for key in self._reader.fields if not key.startswith("GGUF.")}

    # -- listing -------------------------------------------------------------------------------
    def _check(self, tensor: Any) -> TensorInfo:
        size = self._reader.data.shape[0]
        if tensor.data_offset + tensor.n_bytes > size:
            raise FormatError(
                self.path,
                f"truncated: tensor {tensor.name!r} needs bytes up to {tensor.data_offset + tensor.n_bytes}, the file has {size}",
            )
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        kind = tensor.tensor_type.name
        heads = self._qk_heads(tensor.name)
        note = f"rows un-permuted from llama.cpp's rotary order ({heads} heads)" if heads else ""
        return TensorInfo(
            tensor.name, shape, _PLAIN.get(kind, kind), int(tensor.n_bytes), self.path, note=note
        )

    def _qk_heads(self, name: str) -> int | None:
        """The head count to un-permute ``name`` with, or None if it was not permuted."""
        match = _QK.match(name)
        if match is None or self.architecture not in PERMUTED_QK_ARCHS:
            return None
        block = int(match.group(1))
        n_head = _per_layer(self._scalar(f"{self.architecture}.attention.head_count"), block)
        n_kv = _per_layer(self._scalar(f"{self.architecture}.attention.head_count_kv"), block)
        if n_head is None:
            raise FormatError(
                self.path, f"{self.architecture}.attention.head_count is missing; cannot un-permute {name}"
            )
        return n_kv if match.group(2) == "k" and n_kv else n_head

    def infos(self) -> list[TensorInfo]:
        return list(self._infos)

    # -- reading -------------------------------------------------------------------------------
    def _stored(self, name: str) -> np.ndarray:
        tensor = self._tensors[name]
        data = tensor.data
        if tensor.tensor_type.name == "BF16":  # the gguf reader hands BF16 out as raw bytes
            shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
            data = data.view(ml_dtypes.bfloat16).reshape(shape)
        return data

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
        from gguf.quants import dequantize

        tensor = self._tensors[name]
        kind = tensor.tensor_type.name
        data = self._stored(name)
        if index is not None:
            if self._qk_heads(name):
                raise ValueError(f"{name}: rows of a rotary-permuted tensor are not read one by one")
            data = data[index]  # quantised blocks run along the last axis: entries split cleanly
        if kind in _PLAIN:
            values = data if data.dtype == np.float32 else data.astype(np.float32)
        else:
            try:
                values = dequantize(data, tensor.tensor_type)
            except NotImplementedError:
                raise UnsupportedError(
                    self.path, f"tensor {name!r}: GGML type {kind} cannot be dequantised by gguf"
                ) from None
        return self._unpermute(name, values)

    def close(self) -> None:
        # np.memmap has no close; dropping the reader drops the last reference to the mapping.
        self._tensors = {}
        self._reader = None  # type: ignore[assignment]


def _per_layer(value: Any, block: int) -> int | None:
    """A hyper-parameter that is one integer or, for models like DeciLM, a list with one per layer."""
    if isinstance(value, list):
        value = value[block] if block < len(value) else None
    return int(value) if isinstance(value, int) and value > 0 else None
