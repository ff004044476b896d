"""Which elements of a tensor a fingerprint keeps: positions chosen by a keyed hash of each index.

Every axis is sampled on its own: index ``i`` of an axis is kept when the top ``shift`` bits of
``splitmix64(i + key)`` are zero, so about ``n / 2**shift`` of ``n`` indices survive. The choice
depends on the index, the key and the shift only, and ``shift`` depends on the axis length only.
Hence two tensors of one shape keep the same positions, a tensor with rows added or removed at the
end keeps the same shared rows, and a sparser choice is always a subset of a denser one (nested).
The coordinate test on the kept sub-tensor is then an exact test on those elements. A fused
tensor (QKV, gate/up) is sampled part by part along its split axis (``Split``, from ``fused``), so
each part keeps what a separate tensor of the part's shape keeps.

An axis longer than 256 keeps at most 1/32 of its indices, so reading whole kept rows reads at most
~3% of a tensor; shorter axes (a router's experts) and axes in front of the row axis (stacked
experts) are kept whole.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

DEFAULT_KEY = 0x5C7A7C4EC4F1  # fixed, so that fingerprints made anywhere choose alike


@dataclass(frozen=True)
class Plan:
    """The sampling parameters; two fingerprints compare only if their plans are equal."""

    key: int = DEFAULT_KEY
    axis_target: int = 32  # indices kept per sampled axis, between axis_target and 2 * axis_target
    whole_below: int = 1 << 18  # tensors with fewer elements are stored whole (1 MiB as float32)
    min_shift: int = 5  # an axis longer than short_axis keeps at most 1/32 of its indices
    short_axis: int = 256  # an axis this short is kept whole (experts of a router, heads)
    min_kept: int = 2  # an axis keeps at least this many indices (a shorter axis is kept whole)

    def to_dict(self) -> dict[str, Any]:
        return {"hash": "splitmix64", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**{k: v for k, v in data.items() if k != "hash"})


DEFAULT_PLAN = Plan()

_M64 = (1 << 64) - 1

Positions = tuple[np.ndarray, ...]


def keyed_hash(index: np.ndarray, key: int = DEFAULT_KEY) -> np.ndarray:
    """splitmix64 of ``index + key`` (uint64): a fixed, well-mixed hash of each index."""
    with np.errstate(over="ignore"):
        z = np.asarray(index, dtype=np.uint64) + np.uint64(key & _M64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def axis_shift(n: int, axis: int, ndim: int, plan: Plan = DEFAULT_PLAN) -> int:
    """How sparsely axis ``axis`` (of ``ndim``) of length ``n`` is sampled: keep about ``n / 2**shift``.

    A function of the length alone (stacks aside): the residual axis is kept alike whether it is a
    matrix's rows (down projection) or its columns (up projection), so unit features line up."""
    if axis < ndim - 2 or n <= plan.short_axis:
        return 0  # a stack (experts), or a short axis: every entry kept
    return max(int(math.floor(math.log2(n / plan.axis_target))), plan.min_shift)


@lru_cache(maxsize=1024)
def axis_positions(n: int, shift: int, plan: Plan = DEFAULT_PLAN) -> np.ndarray:
    """Sorted indices of ``range(n)`` kept at ``shift``; the shift is lowered until ``min_kept``
    survive. Cached and read-only: every tensor with an axis of this length shares the array."""
    kept = np.arange(n, dtype=np.int64)
    if shift > 0 and n > plan.min_kept:
        top = keyed_hash(kept.astype(np.uint64), plan.key) >> np.uint64(64 - shift)
        while shift > 0:
            chosen = np.flatnonzero(top == 0)
            if chosen.size >= plan.min_kept:
                kept = chosen.astype(np.int64)
                break
            shift -= 1
            top = top >> np.uint64(1)
    kept.setflags(write=False)
    return kept


@dataclass(frozen=True)
class Split:
    """A fused tensor's parts along one axis: consecutive (q, k, v rows; gate, up halves) or
    interleaved (GPT-OSS's gate and up alternate: index ``j`` of part ``p`` is stored at
    ``j * len(parts) + p``; the parts are then of one length)."""

    axis: int
    parts: tuple[int, ...]
    interleaved: bool = False


def sample_positions(
    shape: tuple[int, ...], plan: Plan = DEFAULT_PLAN, split: Split | None = None
) -> Positions | None:
    """Kept indices per axis, or None when the tensor is stored whole (small, or a scalar).

    With ``split``, the split axis is sampled part by part (``part_positions``), so that each part
    of a fused tensor keeps the positions a separate tensor of the part's shape would keep."""
    if not shape or math.prod(shape) < plan.whole_below:
        return None
    kept = [axis_positions(n, axis_shift(n, i, len(shape), plan), plan) for i, n in enumerate(shape)]
    if split is not None:
        kept[split.axis] = part_positions(split, len(shape), plan)
    return tuple(kept)


def part_positions(split: Split, ndim: int, plan: Plan = DEFAULT_PLAN) -> np.ndarray:
    """Kept indices of a split axis: each part sampled as an axis of its own length, then placed
    where the part's indices are stored (sorted, nested and a function of the split)."""
    kept = [part_kept(n, split.axis, ndim, plan) for n in split.parts]
    if split.interleaved:
        return (kept[0][:, None] * len(kept) + np.arange(len(kept))).ravel()
    starts = np.cumsum((0, *split.parts[:-1]))
    return np.concatenate([start + k for start, k in zip(starts, kept, strict=True)])


def part_kept(n: int, axis: int, ndim: int, plan: Plan = DEFAULT_PLAN) -> np.ndarray:
    """Kept indices of one part of length ``n`` of a split axis."""
    return axis_positions(n, axis_shift(n, axis, ndim, plan), plan)


def sample(view: np.ndarray, plan: Plan = DEFAULT_PLAN) -> tuple[Positions | None, np.ndarray]:
    """Positions and values kept from ``view`` (any array: mapped, in memory, dequantised)."""
    positions = sample_positions(tuple(view.shape), plan)
    return positions, take(view, positions)


def take(view: np.ndarray, positions: Positions | None) -> np.ndarray:
    """The elements of ``view`` at ``positions`` (all of it for None). Reads go through
    ``io.mapping.take_rows`` when the view is a mapped tensor, so only the kept rows are read."""
    from ..io.mapping import take_rows

    if positions is None:
        return np.array(view)
    if len(positions) == 1:
        return np.asarray(view[positions[0]])
    rows = take_rows(view.reshape(-1, view.shape[-1]), kept_rows(tuple(view.shape), positions))
    return kept_from_rows(rows, positions)


def kept_rows(shape: tuple[int, ...], positions: Positions) -> np.ndarray:
    """Indices of the kept rows of a tensor seen as ``[-1, shape[-1]]`` (two or more axes), sorted."""
    return np.ravel_multi_index(np.ix_(*positions[:-1]), shape[:-1]).ravel()


def kept_from_rows(rows: np.ndarray, positions: Positions) -> np.ndarray:
    """The kept elements, from the kept rows (in ``kept_rows`` order)."""
    return rows[:, positions[-1]].reshape(*(p.size for p in positions))


def _as_rows(shape: tuple[int, ...], positions: Positions) -> tuple[tuple[int, ...], Positions]:
    """A vector read as one row, so that every tensor is rows of its last axis."""
    if len(shape) == 1:
        return (1, shape[0]), (np.zeros(1, dtype=np.int64), positions[0])
    return shape, positions


def row_starts(
    shape: tuple[int, ...], itemsize: int, positions: Positions, offset: int = 0
) -> tuple[np.ndarray, int]:
    """Where each kept row's kept elements start (the byte of its first kept column; sorted) and the
    bytes from there to its last kept column, alike for every row."""
    kept = tuple(np.asarray(p, dtype=np.int64).tobytes() for p in positions)
    starts, span = _row_starts(tuple(shape), itemsize, kept)
    return offset + starts, span


@lru_cache(maxsize=256)
def _row_starts(shape: tuple[int, ...], itemsize: int, kept: tuple[bytes, ...]) -> tuple[np.ndarray, int]:
    """``row_starts`` at offset 0, cached: the experts of a MoE share a few shapes and positions."""
    shape, positions = _as_rows(shape, tuple(np.frombuffer(k, dtype=np.int64) for k in kept))
    last = positions[-1]
    first, span = int(last[0]), int(last[-1] - last[0] + 1)
    rows = np.ravel_multi_index(np.ix_(*positions[:-1]), shape[:-1]).ravel().astype(np.int64)
    starts = (rows * shape[-1] + first) * itemsize
    starts.setflags(write=False)
    return starts, span * itemsize


def coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted ranges, merged where they touch or overlap."""
    merged: list[list[int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(a, b) for a, b in merged]


def rows_from_ranges(starts: np.ndarray, span: int, fetched: list[tuple[int, bytes]]) -> np.ndarray:
    """The ``span`` bytes at each of ``starts`` (rows of a ``uint8`` array), cut from bytes fetched
    at sorted, coalesced ranges ``(start, data)`` that cover them."""
    at = np.array([s for s, _ in fetched], dtype=np.int64)
    buffer = np.frombuffer(b"".join(d for _, d in fetched), dtype=np.uint8)
    placed = np.cumsum([0] + [len(d) for _, d in fetched[:-1]])  # where each range sits in ``buffer``
    block = np.searchsorted(at, starts, side="right") - 1
    return buffer[(placed[block] + starts - at[block])[:, None] + np.arange(span)]


def kept_from_row_bytes(
    rows: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, positions: Positions
) -> np.ndarray:
    """The kept sub-tensor from the bytes of its kept rows (``row_starts`` order and span)."""
    last = _as_rows(shape, positions)[1][-1]
    values = np.ascontiguousarray(rows).view(dtype)[:, last - last[0]]
    return values.reshape(tuple(p.size for p in positions))


def read_positions(
    reader, offset: int, shape: tuple[int, ...], dtype: np.dtype, positions: Positions | None
) -> tuple[np.ndarray, int]:
    """(the kept sub-tensor, bytes read for it) of a tensor stored as plain numbers at byte
    ``offset`` of ``reader`` (the whole tensor for ``positions`` None): a local file reads each kept
    row (``read_rows``), a remote one fetches coalesced ranges (``read_ranges``)."""
    dtype = np.dtype(dtype)
    if positions is None:
        nbytes = math.prod(shape) * dtype.itemsize
        [(_, data)] = reader.read_ranges([(offset, offset + nbytes)]) if nbytes else [(0, b"")]
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy(), nbytes
    starts, span = row_starts(shape, dtype.itemsize, positions, offset)
    if hasattr(reader, "read_rows"):
        rows = reader.read_rows(starts, span, once=True)
        read = rows.nbytes
    else:
        ranges = coalesce([(s, s + span) for s in starts.tolist()])
        rows = rows_from_ranges(starts, span, reader.read_ranges(ranges))
        read = sum(stop - start for start, stop in ranges)
    return kept_from_row_bytes(rows, shape, dtype, positions), read
