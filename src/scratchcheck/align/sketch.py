"""Cheap sketches of tensor values, so pairing by content never holds whole models in memory.

A sketch is a fixed sample of a tensor's values in its normalised layout: the same positions for
every tensor of one shape (chosen by a seed derived from the shape), so the Pearson correlation of
two sketches estimates the Pearson correlation of the two tensors. Sampling a memory-mapped view
reads only the pages the sample touches.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..io.base import Checkpoint
from ..io.mapping import gather
from ..io.views import TensorView, apply_ops, leading_index

SAMPLE = 1024  # values per sketch: chance |r| between unrelated tensors is about 1/sqrt(SAMPLE)


@lru_cache(maxsize=256)
def sample_index(shape: tuple[int, ...], size: int = SAMPLE) -> tuple[np.ndarray, ...]:
    """Sorted positions (as one index array per axis) sampled from a tensor of ``shape``."""
    numel = int(np.prod(shape, dtype=np.int64))
    if numel <= size:
        flat = np.arange(numel)
    else:
        rng = np.random.default_rng(zlib.crc32(repr(shape).encode()))
        # Not rng.choice(numel, replace=False): that builds a permutation of all numel positions,
        # gigabytes for one large tensor. Draw with replacement and drop the rare repeats instead.
        picks = np.unique(rng.integers(0, numel, size=size + size // 8))
        while picks.size < size:
            picks = np.unique(np.concatenate([picks, rng.integers(0, numel, size=size)]))
        flat = np.sort(rng.choice(picks, size=size, replace=False))
    return np.unravel_index(flat, shape)


@dataclass(frozen=True)
class Sketch:
    unit: np.ndarray  # the sample centred and scaled to unit norm: unit @ unit' is Pearson
    mean: float
    std: float
    max_abs: float
    n: int
    binary: bool  # every sampled value is 0 or 1 (a mask?)

    @property
    def constant(self) -> bool:
        return self.std == 0.0


def sketch_of(values: np.ndarray) -> Sketch:
    """The sketch of an already-sampled vector of values."""
    sample = np.asarray(values, dtype=np.float64).ravel()
    if not sample.size:
        return Sketch(sample.astype(np.float32), 0.0, 0.0, 0.0, 0, True)
    mean = sample.mean()
    centred = sample - mean
    norm = float(np.linalg.norm(centred))
    unit = ((centred / norm) if norm > 0 else np.zeros_like(centred)).astype(np.float32)
    return Sketch(
        unit,
        float(mean),
        float(sample.std()),
        float(np.abs(sample).max()),
        sample.size,
        bool(((sample == 0.0) | (sample == 1.0)).all()),
    )


class Sketcher:
    """Sketches of one checkpoint's views, cached; a stored tensor is read once for all its views."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._cache: dict[tuple, Sketch] = {}
        self._last: tuple[tuple[tuple[str, ...], int | None], list[np.ndarray]] | None = None

    def arrays(self, sources: tuple[str, ...], index: int | None = None) -> list[np.ndarray]:
        """The stored tensors' values (``read_values``; entry ``index`` of a stacked tensor), the
        last ones kept: views of one stored tensor come one after another (split QKV, gate and up of
        one expert), and a quantised GGUF tensor should not be dequantised once per view."""
        if self._last is None or self._last[0] != (sources, index):
            self._last = ((sources, index), [self.checkpoint.read_values(n, index) for n in sources])
        return self._last[1]

    def get(self, view: TensorView, transposed: bool = False) -> Sketch:
        """The sketch of ``view`` (read as its transpose when ``transposed``, for 2-D views)."""
        key = (view.key, transposed)
        found = self._cache.get(key)
        if found is None:
            index, ops = leading_index(view.ops)
            array = apply_ops(self.arrays(view.sources, index), ops)
            if transposed:
                array = array.T
            values = gather(array, sample_index(tuple(array.shape))) if array.ndim else array.reshape(1)
            found = self._cache[key] = sketch_of(values.astype(np.float64))
        return found


def similarity(a: list[Sketch], b: list[Sketch]) -> np.ndarray:
    """Pearson estimates between every sketch of ``a`` and every sketch of ``b`` (same shapes)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    return np.stack([s.unit for s in a]) @ np.stack([s.unit for s in b]).T
