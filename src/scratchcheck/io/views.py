"""Tensors in a normalised layout: views that undo how a format or family stores a weight.

Every comparison happens in one layout: linear weights ``[out, in]`` (Hugging Face), one tensor per
role (q, k, v separate; gate and up separate; one tensor per MoE expert), patch embeddings
flattened to ``[out, in]``. A ``TensorView`` names the stored tensor(s) and the operations that
bring them into that layout. The operations are numpy views (slices, transposes, indexing), so
nothing is copied, except where stored pieces have to be joined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Checkpoint

# One step of a view: ("T",) transpose a matrix; ("rows", start, stop[, step]) slice axis 0;
# ("index", i) take entry i of axis 0 (an expert of a stacked tensor); ("flatten",) reshape to
# [axis 0, rest]; ("join", axis) stack the view's parts along a new axis.
Op = tuple


def apply_ops(arrays: list[np.ndarray], ops: tuple[Op, ...]) -> np.ndarray:
    """The normalised array from the stored one(s)."""
    array = arrays[0]
    for op in ops:
        kind = op[0]
        if kind == "join":
            array = np.stack(arrays, axis=op[1])
        elif kind == "T":
            array = array.T
        elif kind == "rows":
            array = array[op[1] : op[2] : op[3] if len(op) > 3 else None]
        elif kind == "index":
            array = array[op[1]]
        elif kind == "flatten":
            array = array.reshape(array.shape[0], -1)
        else:
            raise ValueError(f"unknown layout operation {kind!r}")
    return array


def leading_index(ops: tuple[Op, ...]) -> tuple[int | None, tuple[Op, ...]]:
    """A view that starts by taking one entry of axis 0 (an expert) lets the reader read only that
    entry: the index and the remaining operations."""
    if ops and ops[0][0] == "index":
        return ops[0][1], ops[1:]
    return None, ops


def describe(ops: tuple[Op, ...]) -> str:
    """Human words for a view's operations, e.g. ``"transposed, rows 0:64"``."""
    words = {
        "T": lambda op: "transposed",
        "rows": lambda op: f"rows {op[1]}:{op[2]}" + (f":{op[3]} (interleaved)" if len(op) > 3 else ""),
        "index": lambda op: f"expert {op[1]} of stacked",
        "flatten": lambda op: "flattened to [out, in]",
        "join": lambda op: "joined split parts",
    }
    return ", ".join(words[op[0]](op) for op in ops)


@dataclass(frozen=True)
class TensorView:
    """One stored tensor (or several joined) as compared: values in the normalised layout, read on demand."""

    checkpoint: Checkpoint
    name: str
    shape: tuple[int, ...]
    label: str = ""
    ops: tuple[Op, ...] = ()
    parts: tuple[str, ...] = ()  # stored tensors joined by a ("join", axis) op; empty: just ``name``
    full_numel: int | None = None  # parameters behind a part of a sampled fused tensor (fingerprints)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.parts or (self.name,)

    @property
    def key(self) -> tuple:
        """Identity of the view within its checkpoint (for caches)."""
        return (self.sources, self.ops)

    def load(self) -> np.ndarray:
        """Values in the normalised layout (a view of the stored data where the format allows)."""
        index, ops = leading_index(self.ops)
        return apply_ops([self.checkpoint.read_values(n, index) for n in self.sources], ops)

    @property
    def numel(self) -> int:
        """Parameters behind this view. Equal to its size, except in a fingerprint, whose tensors
        hold a sample: there the view counts its share of the model's tensor."""
        if self.full_numel is not None:
            return self.full_numel
        size = int(math.prod(self.shape))
        stored = [self.checkpoint.info(n) for n in self.sources]
        kept = sum(int(np.prod(i.shape, dtype=np.int64)) for i in stored)
        full = sum(i.numel for i in stored)
        return size if kept in (0, full) else size * full // kept

    @property
    def nbytes(self) -> int:
        """Stored bytes behind this view (a slice of a tensor counts its share)."""
        stored = [self.checkpoint.info(n) for n in self.sources]
        total = sum(int(np.prod(i.shape, dtype=np.int64)) for i in stored) or 1
        return sum(i.nbytes for i in stored) * int(np.prod(self.shape, dtype=np.int64)) // total

    @property
    def transform(self) -> str:
        return describe(self.ops)


def plain_view(checkpoint: Checkpoint, name: str) -> TensorView:
    """A stored tensor as it is."""
    return TensorView(checkpoint, name, checkpoint.info(name).shape)


def transposed(view: TensorView) -> TensorView:
    """The same matrix read the other way round (ONNX MatMul ``[in, out]`` -> ``[out, in]``)."""
    label = (view.label or view.name) + " (transposed)"
    return TensorView(
        view.checkpoint, view.name, view.shape[::-1], label, view.ops + (("T",),), view.parts, view.full_numel
    )
