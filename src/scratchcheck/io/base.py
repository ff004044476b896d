"""The lazy checkpoint abstraction every reader feeds: tensor listings from headers, reads on demand.

A ``Checkpoint`` is a model as published: one or more tensor files of one format plus the metadata
files beside them (configs, tokenizer files, code). Listing it touches headers only; ``read`` returns
one tensor in its stored dtype (a memory-mapped view wherever the format allows) and ``read_float``
the same tensor as float32, dequantised where the checkpoint stores it quantised.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import FormatError, NotFoundError, reading
from .dtypes import SAFETENSORS_DTYPES, to_float32


@dataclass(frozen=True)
class TensorInfo:
    """What a header says about one tensor. ``shape`` is in numpy (row-major) order."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # canonical spelling: safetensors names (BF16, F8_E4M3, ...) or a GGUF quant (Q4_K)
    nbytes: int  # bytes as stored
    file: Path
    # True for tensors that are not model weights by themselves: quantisation scales and zero
    # points, or raw quantised data whose dequantised view is listed under another name.
    aux: bool = False
    note: str = ""  # how the value is obtained when it is not read as stored, e.g. "int8 x scale"

    @property
    def numel(self) -> int:
        return int(math.prod(self.shape))

    @property
    def model_shape(self) -> tuple[int, ...]:
        """The weight's shape; ``shape`` is that of what reads return (in a fingerprint, a sample)."""
        return self.shape

    def kept_parts(
        self, axis: int, parts: tuple[int, ...], interleaved: bool = False
    ) -> tuple[int, ...] | None:
        """How many indices of each part of ``axis`` (lengths ``parts``, which add up to the weight's
        axis; consecutive, or alternating) reads return: all of them, except in a fingerprint."""
        return parts


class TensorFile(ABC):
    """One file of tensors in one format. Readers subclass this; ``Checkpoint`` combines them."""

    path: Path
    format: str

    @abstractmethod
    def infos(self) -> list[TensorInfo]:
        """Every tensor in the file, in file order, from the header alone."""

    @abstractmethod
    def read(self, name: str) -> np.ndarray:
        """The tensor as stored (a read-only view on a mapping where possible)."""

    def read_float(self, name: str, index: int | None = None) -> np.ndarray | None:
        """The tensor (entry ``index`` of its first axis when given) as float32 if this format needs
        its own dequantisation, else None."""
        return None

    def close(self) -> None:  # noqa: B027 - most readers hold nothing that needs closing
        pass


METADATA_PATTERNS = (
    "*.json",
    "*.model",
    "*.txt",
    "*.tiktoken",
    "*.py",
    "LICENSE*",
    "LICENCE*",
    "NOTICE*",
    "*.md",
    "*.jinja",
)


@dataclass
class Checkpoint:
    """A model opened lazily. Build one with ``scratchcheck.open_model``."""

    path: Path
    format: str
    files: list[TensorFile]
    metadata_files: dict[str, Path] = field(default_factory=dict)  # relative name -> path
    _index: dict[str, tuple[TensorInfo, TensorFile]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {}
        for tensor_file in self.files:
            with reading(tensor_file.path):
                infos = tensor_file.infos()
            for info in infos:
                if info.name in self._index:
                    other = self._index[info.name][0].file
                    raise FormatError(info.file, f"tensor {info.name!r} is also stored in {other}")
                self._index[info.name] = (info, tensor_file)
        from .dequant import scale_tensor_names

        for scale in scale_tensor_names(self.tensors()):
            info, tensor_file = self._index[scale]
            self._index[scale] = (replace(info, aux=True, note="quantisation scale"), tensor_file)
        from .dequant import mxfp4_tensors

        if (mxfp4 := mxfp4_tensors(self)) is not None:
            # Each MXFP4 weight is listed where its blocks are; blocks and scales become aux.
            virtual = {info.name + "_blocks": info for info in mxfp4.infos()}
            parts = {part.name: name for name, pair in mxfp4.pairs.items() for part in pair}
            index = {}
            for name, (info, tensor_file) in self._index.items():
                if name in virtual:
                    index[virtual[name].name] = (virtual[name], mxfp4)
                if name in parts:
                    info = replace(info, aux=True, note=f"MXFP4 data of {parts[name]}")
                index[name] = (info, tensor_file)
            self._index = index

    # -- listing -------------------------------------------------------------------------------
    def tensors(self) -> list[TensorInfo]:
        """Every tensor, aux ones included, in file order."""
        return [info for info, _ in self._index.values()]

    def weights(self) -> list[TensorInfo]:
        """The tensors that are model parameters (aux tensors left out)."""
        return [info for info, _ in self._index.values() if not info.aux]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.tensors())

    def __len__(self) -> int:
        return len(self._index)

    def info(self, name: str) -> TensorInfo:
        try:
            return self._index[name][0]
        except KeyError:
            raise NotFoundError(self.path, f"no tensor named {name!r}") from None

    def file_of(self, name: str) -> TensorFile:
        """The file that reads tensor ``name`` (for an MXFP4 weight, the view that dequantises it)."""
        self.info(name)  # a missing name is a one-line error naming the model
        return self._index[name][1]

    @property
    def num_params(self) -> int:
        return sum(info.numel for info in self.weights())

    def dtype_breakdown(self) -> dict[str, int]:
        """Parameters per stored dtype."""
        counts: Counter[str] = Counter()
        for info in self.weights():
            counts[info.dtype] += info.numel
        return dict(counts.most_common())

    # -- reading -------------------------------------------------------------------------------
    def read(self, name: str) -> np.ndarray:
        """One tensor in its stored dtype."""
        info = self.info(name)
        with reading(info.file):
            return self._index[info.name][1].read(name)

    def read_float(self, name: str, index: int | None = None) -> np.ndarray:
        """One tensor as float32, dequantised when it is stored quantised (FP8 + scales, GGUF, int8).

        ``index`` reads entry ``index`` of the first axis only (one expert of a stacked tensor):
        a 4-bit stack of 256 experts is then never dequantised whole, once per expert."""
        from .dequant import (
            dequantise_with_scales,  # a checkpoint-level rule: scales may sit in another shard
        )

        info = self.info(name)
        tensor_file = self._index[info.name][1]
        with reading(info.file):
            special = tensor_file.read_float(name, index)
            if special is not None:
                return special
            scaled = dequantise_with_scales(self, name)
            if scaled is not None:
                return scaled if index is None else scaled[index]
            stored = tensor_file.read(name)
            return to_float32(stored if index is None else stored[index])

    def read_values(self, name: str, index: int | None = None) -> np.ndarray:
        """The cheapest numeric form of a tensor (entry ``index`` of its first axis when given): the
        stored view for plain dtypes (bf16 stays bf16, so nothing is copied), dequantised float32
        for quantised ones. Streaming code casts per chunk."""
        if self.stored_as_is(name):
            stored = self.read(name)
            return stored if index is None else stored[index]
        return self.read_float(name, index)

    def stored_as_is(self, name: str) -> bool:
        """Whether ``read_values`` hands out the stored tensor itself (free to read, a view), rather
        than values it has to compute (dequantise, un-permute)."""
        info = self.info(name)
        if info.dtype not in SAFETENSORS_DTYPES or info.note:
            return False
        from .dequant import scale_of

        return scale_of(self._index, info) is None

    # -- metadata ------------------------------------------------------------------------------
    def metadata_text(self, name: str) -> str | None:
        """The text of one metadata file (``config.json``, ``tokenizer.json`` ...) or None."""
        path = self.metadata_files.get(name)
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise NotFoundError(path, f"cannot read: {exc.strerror}") from None

    def config(self) -> dict | None:
        """``config.json`` parsed, or None if there is none or it is not a readable JSON object.

        A broken config never stops the weights being read: ``scratchcheck.metadata`` reports it as a
        finding, and callers here (inspection, FP8 block sizes) fall back to what the weights say.
        """
        try:
            text = self.metadata_text("config.json")
            value = json.loads(text) if text is not None else None
        except (NotFoundError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
            return None
        return value if isinstance(value, dict) else None

    def close(self) -> None:
        for tensor_file in self.files:
            tensor_file.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
