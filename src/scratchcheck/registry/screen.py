"""The scan's second stage: a vectorised screen of the shape filter's candidates, on small sketches.

Each registered fingerprint keeps, per normalised view of a learned tensor, three sketches of a
few thousand values at most (``align.sketch.sample_index``: the same positions for every view of
one shape):

- ``coord``: the values themselves, in the view's layout (a matrix read with its shorter axis first,
  so that a transposed copy shares the key). Sees copies, fine-tunes, noise, quantisation.
- ``cols``: the off-diagonal Gram entries of the columns, ``A^T A``. Permuting or rotating the rows
  (a matrix's units, or a residual stream stored along its rows) leaves it unchanged.
- ``rows``: the same of ``A A^T``, unchanged when the columns are permuted or rotated.

So a permuted derivative (units, heads) keeps one Gram of every matrix, a rotated residual stream
keeps the other, and a dropped or moved layer is met because every suspect view is compared with
every same-key view of an entry, whatever its layer. Two statistics per entry, from the Fisher z of
each pair's Pearson (N(0, 1) when the two are independent):

- ``max``: the strongest single pair, Bonferroni-adjusted over the entry's pairs;
- ``aligned``: Stouffer's sum over the pairs at the same place (component kind, role, layer,
  expert): a weak relation spread over the model, the full test's strength, adds up here.

An entry is kept when either, Bonferroni over the two, is below ``SCREEN_ALPHA``. docs/methods.md
section 11 says why this cannot drop a source the full test finds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..align.sketch import sample_index
from ..arch import layout
from ..fingerprint.format import FingerprintCheckpoint
from ..io import Checkpoint

# The full test calls a registered model a source at 1e-6 over components x entries (3e-11 per
# test in a registry of 10,000 with three components); its spread rule asks that the evidence survive leaving out the
# strongest tensors. The screen needs only 1e-4 per entry, six orders of magnitude more lenient,
# and lets through about one unrelated entry in ten thousand (each costing one full test).
SCREEN_ALPHA = 1e-4
# Values per sketch. Coordinates keep many: a weak relation spread over a tensor shows in them
# alone, and detectable_r (what "no known source" reports) is read from them. A Gram correlates
# like r^2 where the weights correlate like r, so it only has to see strong disguised relations.
# Changing either (or the keys, or sample_index) means raising schema.SKETCH_VERSION.
COORD_SAMPLE = 2048
GRAM_SAMPLE = 256
MIN_VALUES = 8  # a sketch of fewer values says too little to keep (its Fisher z needs n > 3)
MAX_GRAM = 1024  # Gram matrices of longer axes are not built (only whole-stored small tensors have them)
_MAX_R = 1.0 - 1e-7  # an exact copy's Pearson of 1 would give an infinite z
STATISTICS = 2  # max and aligned
_BATCH = 1024  # entries scored together per key


@dataclass(frozen=True)
class Block:
    """Sketches of one key: a label per row (where in the model) and unit rows (Pearson = dot product)."""

    labels: list[str]
    units: np.ndarray  # (rows, values) float16

    def encode(self) -> tuple[str, bytes]:
        """The stored form: labels joined by newlines, unit values as little-endian float16."""
        return "\n".join(self.labels), self.units.astype("<f2").tobytes()


def sketch_model(checkpoint: Checkpoint) -> dict[str, Block]:
    """The screen's sketches of every learned view of ``checkpoint`` (a fingerprint opened as one:
    every view is read whole, which a fingerprint's kept samples allow)."""
    from ..align.nonlearned import nonlearned
    from ..align.sketch import Sketcher

    model = layout(checkpoint)
    fixed = nonlearned(model, Sketcher(checkpoint))
    found: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for entry in model.entries:
        view = entry.view
        if all(source in fixed for source in view.sources) or not view.shape:
            continue  # identical in independent models: never evidence, for the full test either
        values = np.asarray(view.load(), dtype=np.float64)
        if values.ndim == 2 and values.shape[0] > values.shape[1]:
            values = values.T
        shape = "x".join(str(d) for d in values.shape)
        label = f"{model.kind_of(entry.component)}/{entry.role}/{entry.layer}/{entry.expert}"
        rows = [(f"coord {shape}", _unit(values[sample_index(values.shape, COORD_SAMPLE)]))]
        if values.ndim == 2:
            rows += [(f"cols {shape}", _gram(values)), (f"rows {shape}", _gram(values.T))]
        for key, unit in rows:
            if unit is not None and unit.size >= MIN_VALUES and unit.any():
                labels, units = found.setdefault(key, ([], []))
                labels.append(label)
                units.append(unit)
    return {key: Block(labels, np.stack(units).astype(np.float16)) for key, (labels, units) in found.items()}


def sketch_fingerprint(checkpoint: FingerprintCheckpoint) -> dict[str, Block]:
    """``sketch_model`` of an opened fingerprint, its kept samples read into memory first (a
    fingerprint is small; scattered reads of a mapped file would cost a system call a value)."""
    from ..fingerprint.format import as_checkpoint

    fp = checkpoint.fingerprint
    assert fp is not None
    loaded = replace(fp, arrays={name: np.array(a) for name, a in fp.arrays.items()})
    with as_checkpoint(loaded, checkpoint.path, dict(checkpoint.metadata_files)) as inner:
        return sketch_model(inner)


def sketch_file(path: str | os.PathLike[str]) -> dict[str, Block]:
    """``sketch_fingerprint`` of the fingerprint file at ``path``."""
    from ..fingerprint.format import open_fingerprint

    with open_fingerprint(Path(path)) as checkpoint:
        return sketch_fingerprint(checkpoint)


def _unit(values: np.ndarray) -> np.ndarray:
    """The values centred and scaled to unit norm (zero when constant): Pearson is a dot product."""
    centred = values.ravel() - values.mean()
    norm = float(np.linalg.norm(centred))
    return centred / norm if norm > 0 else np.zeros_like(centred)


def _gram(matrix: np.ndarray) -> np.ndarray | None:
    """The unit sketch of the off-diagonal entries of ``matrix^T matrix``."""
    d = matrix.shape[1]
    if d > MAX_GRAM or d < 2:
        return None
    upper = (matrix.T @ matrix)[_upper(d)]
    return _unit(upper[sample_index(upper.shape, GRAM_SAMPLE)])


@lru_cache(maxsize=64)
def _upper(d: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(d, 1)


@dataclass(frozen=True)
class Screened:
    """One candidate's screen: its statistics' log p (natural log) and whether it is kept."""

    name: str
    log_p: float  # the smaller of max and aligned, each Bonferroni-adjusted, times STATISTICS
    pairs: int  # sketch pairs compared

    @property
    def kept(self) -> bool:
        return self.log_p < math.log(SCREEN_ALPHA)


def screen(suspect: dict[str, Block], rows: Iterable[tuple[str, str, str, bytes]]) -> list[Screened]:
    """Every entry in ``rows`` (name, key, labels, data: the stored blocks of the suspect's keys),
    screened against the suspect's blocks; strongest first."""
    from scipy.special import log_ndtr

    ids: dict[str, int] = {}
    places = _Places(suspect)
    # per batch: entry ids, strongest |z|, pairs, aligned z sum and count (one value per entry)
    parts: list[tuple[np.ndarray, ...]] = []
    for key, names, sizes, texts, theirs in _batches(rows, suspect):
        mine = suspect[key]
        entry = np.array([ids.setdefault(name, len(ids)) for name in names])
        owner = np.repeat(np.arange(len(names)), sizes)
        r = mine.units.astype(np.float32) @ theirs.T
        root = math.sqrt(mine.units.shape[1] - 3)
        strongest = np.zeros(len(names))
        np.maximum.at(strongest, owner, _fisher(np.abs(r).max(axis=0)) * root)
        row, column = np.nonzero(places.of(mine.labels)[:, None] == places.stacked(texts)[None, :])
        aligned_sum = np.bincount(owner[column], _fisher(r[row, column]) * root, len(names))
        aligned_count = np.bincount(owner[column], minlength=len(names))
        parts.append((entry, strongest, len(mine.labels) * sizes, aligned_sum, aligned_count))
    if not parts:
        return []
    entry, strongest, pairs, aligned_sum, aligned_count = (
        np.concatenate(x) for x in zip(*parts, strict=True)
    )
    z_max = np.zeros(len(ids))
    np.maximum.at(z_max, entry, strongest)
    pairs = np.bincount(entry, pairs, len(ids))
    count = np.bincount(entry, aligned_count, len(ids))
    stouffer = np.bincount(entry, aligned_sum, len(ids)) / np.sqrt(np.maximum(count, 1))
    log_p_max = math.log(2.0) + log_ndtr(-z_max) + np.log(pairs)
    log_p_aligned = log_ndtr(-stouffer)  # one-sided: a source correlates positively
    log_p = np.minimum(np.minimum(log_p_max, log_p_aligned) + math.log(STATISTICS), 0.0)
    out = [Screened(name, float(log_p[i]), int(pairs[i])) for name, i in ids.items()]
    return sorted(out, key=lambda s: s.log_p)


class _Places:
    """Labels as integers: the suspect's places numbered, any other place -1; a stored block's
    labels text parsed once (entries of one architecture share it)."""

    def __init__(self, suspect: dict[str, Block]) -> None:
        labels = sorted({x for block in suspect.values() for x in block.labels})
        self.number = {label: i for i, label in enumerate(labels)}
        self._texts: dict[str, np.ndarray] = {}

    def of(self, labels: list[str]) -> np.ndarray:
        return np.array([self.number.get(x, -1) for x in labels])

    def stacked(self, texts: list[str]) -> np.ndarray:
        """Every row's place, for the stored blocks' labels texts (``Block.encode``)."""
        found = []
        for text in texts:
            places = self._texts.get(text)
            if places is None:
                places = self._texts[text] = self.of(text.split("\n"))
            found.append(places)
        return np.concatenate(found)


def _fisher(r: np.ndarray) -> np.ndarray:
    """Fisher's z of Pearson correlations (computed where needed only: arctanh is not cheap)."""
    return np.arctanh(np.clip(r, -_MAX_R, _MAX_R))


def _batches(
    rows: Iterable[tuple[str, str, str, bytes]], suspect: dict[str, Block]
) -> Iterator[tuple[str, list[str], np.ndarray, list[str], np.ndarray]]:
    """The stored rows (ordered by key) as batches of one key and at most ``_BATCH`` entries (a key
    thousands of entries share is not read into memory at once): key, entry names, rows per entry,
    their labels texts, every row's unit values (float32, stacked)."""
    key, names, texts, data = None, [], [], []

    def batch() -> tuple[str, list[str], np.ndarray, list[str], np.ndarray]:
        assert key is not None
        width = 2 * suspect[key].units.shape[1]  # bytes a row: one shape, one sketch size
        units = np.frombuffer(b"".join(data), dtype="<f2").reshape(-1, width // 2).astype(np.float32)
        return key, names, np.array([len(x) // width for x in data]), texts, units

    for name, row_key, row_labels, row_data in rows:
        if names and (row_key != key or len(names) == _BATCH):
            yield batch()
            names, texts, data = [], [], []
        key = row_key
        names.append(name)
        texts.append(row_labels)
        data.append(row_data)
    if names:
        yield batch()


def detectable_r(suspect: dict[str, Block], kind: str) -> float | None:
    """The smallest common |r| at which the aligned statistic keeps an entry, on the suspect's
    coordinate sketches of a component of ``kind`` (each pair's Fisher z grows as r * sqrt(n - 3),
    Stouffer's sum as their mean * sqrt(pairs); Grams are left out, see ``GRAM_SAMPLE``); None when
    the component has no sketch."""
    from scipy.special import ndtri

    roots = [
        math.sqrt(block.units.shape[1] - 3)
        for key, block in suspect.items()
        if key.startswith("coord ")
        for label in block.labels
        if label.startswith(kind + "/")
    ]
    if not roots:
        return None
    z = -float(ndtri(SCREEN_ALPHA / STATISTICS))
    return math.tanh(z * math.sqrt(len(roots)) / sum(roots))
