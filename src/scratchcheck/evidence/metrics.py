"""Per-pair numbers: the sums of one streaming pass (``stream``), then the few statistics that need
a sample (ranks, the shape of the difference) or sampled rows (the rotation null's width).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..io.mapping import released, take_rows
from . import grids
from .backend import matmul
from .stream import stream_sums
from .thresholds import IDENTICAL_PEARSON


@dataclass(frozen=True)
class PairMetrics:
    n: int
    cosine: float
    pearson: float
    rel_l2: float  # ||a - b|| / ||b||
    max_abs_diff: float
    frac_equal: float
    bit_identical: bool
    # What raw cosine would be with no element-wise correspondence at all: n * mean(a) * mean(b) /
    # (||a|| ||b||). Near 1 for positive, near-constant tensors such as norm gains.
    cosine_null: float
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    spearman: float  # on a sample of SAMPLE positions
    delta_corr: float  # corr(a - b, b)
    delta_kurtosis: float  # Pearson kurtosis of a - b on the sample; 3 for Gaussian noise
    sample_a: np.ndarray  # the sampled values, for tests that need raw values (permutation nulls)
    sample_b: np.ndarray
    # Variance of the centred cross-product under the strictest basis null (a random rotation of
    # either axis of the reference), relative to the coordinate-shuffle variance; 1 for vectors.
    # Above 1 where an axis is shared by any two models (tokens, pixels) and carries common structure.
    null_inflation: float = 1.0
    # corr(|a - b|, |b|) on the sample: floating-point rounding errors grow with the value (> 0.3),
    # added noise and fixed-step quantisation errors do not (~0).
    delta_scale_corr: float = float("nan")
    ndim: int = 1
    # What marks the difference as a change of precision rather than an edit (``grids``): one side
    # on a float grid the other is not on ("float grid"), or on an integer quantisation's grid
    # ("integer grid"), or, with no float grid shared, errors growing with the value ("float
    # rounding"); None when the pair carries no such trace, or is not near enough to ask.
    conversion_trace: str | None = None


def pair_metrics(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> PairMetrics:
    """Every per-pair number for two arrays of one shape (any numeric dtype; views are not copied)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    n = int(a.size)
    sums = stream_sums(a, b, seed=seed)
    sample_a, sample_b = _joined(sums.samples_a), _joined(sums.samples_b)
    delta = sample_a - sample_b
    scale_corr = pearson(np.abs(delta), np.abs(sample_b)) if sample_a.size > 2 else math.nan
    mean_a, mean_b = sums.mean_a, sums.mean_b
    var_a, var_b, sum_dd = sums.m_aa, sums.m_bb, sums.sum_dd
    # Raw (uncentred) sums from the centred ones: no cancellation, all terms are exact-ish sums.
    sum_ab = sums.m_ab + n * mean_a * mean_b
    norm_a = math.sqrt(var_a + n * mean_a * mean_a)
    norm_b = math.sqrt(var_b + n * mean_b * mean_b)
    var_d = max(sum_dd - n * (mean_a - mean_b) ** 2, 0.0)
    r = _ratio(sums.m_ab, math.sqrt(var_a * var_b))
    widest = widest_inflation(a.shape)
    if abs(r) * math.sqrt(max(n - 1, 1) / widest) >= Z_DECISIVE:
        inflation = widest  # decisive even under the widest null there can be: no estimate needed
    else:
        with released(a, b):  # the rows it re-reads are scattered: hand their pages back
            inflation = null_inflation(a, b, mean_a, mean_b, var_a * var_b / max(n - 1, 1), seed=seed)
    return PairMetrics(
        n=n,
        cosine=_ratio(sum_ab, norm_a * norm_b),
        pearson=r,
        rel_l2=_ratio(math.sqrt(sum_dd), norm_b),
        max_abs_diff=sums.max_diff,
        frac_equal=(n - sums.unequal) / n if n else float("nan"),
        bit_identical=bool(sums.same_bytes and n > 0),
        cosine_null=_ratio(n * mean_a * mean_b, norm_a * norm_b),
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=math.sqrt(var_a / n) if n else float("nan"),
        std_b=math.sqrt(var_b / n) if n else float("nan"),
        spearman=spearman(sample_a, sample_b),
        delta_corr=_ratio(sums.m_ab - var_b, math.sqrt(var_d * var_b)),
        delta_kurtosis=_kurtosis(delta),
        sample_a=sample_a,
        sample_b=sample_b,
        delta_scale_corr=scale_corr,
        ndim=a.ndim,
        conversion_trace=conversion_trace(a, b, sample_a, sample_b, scale_corr)
        if r >= IDENTICAL_PEARSON and sums.max_diff > 0
        else None,
        null_inflation=inflation,
    )


def conversion_trace(
    a: np.ndarray, b: np.ndarray, sample_a: np.ndarray, sample_b: np.ndarray, scale_corr: float
) -> str | None:
    """The trace of a change of precision the pair carries (see ``PairMetrics.conversion_trace``):
    one side on a grid the other is not on, and equal to the other side rounded onto it.

    Float grids are read on the sampled values; an integer grid needs consecutive values, so a few
    rows of each side are read again (only for near-identical pairs, where the question arises)."""
    on_a, on_b = grids.float_grids(sample_a), grids.float_grids(sample_b)
    for grid in on_a ^ on_b:
        fine, coarse = (sample_b, sample_a) if grid in on_a else (sample_a, sample_b)
        if grids.rounds_to(fine, coarse, grid):
            return "float grid"
    for transposed in _orientations(a):
        runs_a, runs_b = _runs(a, transposed), _runs(b, transposed)
        if runs_a is None or runs_b is None:
            continue
        # The same positions on both sides: a side not in memory order reads shorter runs.
        length = min(runs_a.shape[1], runs_b.shape[1])
        runs_a, runs_b = runs_a[:, :length], runs_b[:, :length]
        steps_a, steps_b = grids.integer_steps(runs_a), grids.integer_steps(runs_b)
        # One side on a grid, the other off every grid and within half a step of it.
        if steps_a is not None and steps_b is None and grids.rounds_onto(runs_b, runs_a, steps_a):
            return "integer grid"
        if steps_b is not None and steps_a is None and grids.rounds_onto(runs_a, runs_b, steps_b):
            return "integer grid"
    # Rounding in arithmetic (a recomputed or refactored tensor): only between two sides on no float
    # grid (a side on a grid the other is not on was not rounded onto it, checked above, and
    # rounding a value onto a grid it is already on leaves it as it is); errors growing with the
    # value, and no larger than rounding's anywhere. The correlation alone is not enough: a change
    # of one size everywhere (+-lr) is left with only float32's jitter, which grows with the value.
    if (
        not on_a
        and not on_b
        and math.isfinite(scale_corr)
        and scale_corr > ROUNDING_SCALE_CORR
        and grids.rounding_sized(sample_a, sample_b)
    ):
        return "float rounding"
    return None


def on_integer_grid(x: np.ndarray) -> bool:
    """Whether a matrix's consecutive values, along its rows or its columns, lie on the grids of a
    dequantised integer quantisation (``grids.integer_steps``)."""
    for transposed in _orientations(x):
        runs = _runs(x, transposed)
        if runs is not None and grids.integer_steps(runs) is not None:
            return True
    return False


def _orientations(x: np.ndarray) -> tuple[bool, ...]:
    """Rows of a matrix, then of its transpose (per-channel scales put a grid along either axis);
    a tensor of more axes is read in one orientation (``_runs``)."""
    return (False, True) if x.ndim == 2 else (False,)


def _runs(x: np.ndarray, transposed: bool) -> np.ndarray | None:
    """Up to RUN_ROWS evenly spaced rows of ``x`` (of ``x.T`` if ``transposed``), each cut to its
    first RUN_LENGTH values (STRIDED_LENGTH when not consecutive in memory, read as the few strided
    values needed; rows in memory order are read whole with ``pread``). A tensor of more axes in
    memory order is read as rows of its last axis (stacked experts' matrices) or, where that axis is
    too short to hold a block (a convolution's kernel), of everything after the first (one output
    channel a row, the unit per-channel quantisation scales). None for a vector."""
    if x.ndim < 2 or not x.size:
        return None
    if x.ndim > 2:
        if transposed or not x.flags.c_contiguous:
            return None
        x = x.reshape(-1, x.shape[-1]) if x.shape[-1] >= 4 * grids.BLOCK else x.reshape(x.shape[0], -1)
    rows = x.T if transposed else x
    pick = np.unique(np.linspace(0, rows.shape[0] - 1, min(RUN_ROWS, rows.shape[0])).astype(np.int64))
    if rows.flags.c_contiguous:
        return np.asarray(take_rows(rows, pick))[:, :RUN_LENGTH]
    # Each value down a column is on another row (another page): fewer, still 8 blocks a column.
    return np.asarray(rows[pick, :STRIDED_LENGTH])


RANK_SAMPLE = 1 << 14  # values ranked for Spearman
RUN_ROWS = 8  # rows read again for the integer-grid check of a near-identical pair ...
RUN_LENGTH = 1024  # ... at most this many values of each
STRIDED_LENGTH = 128  # ... or of each column, where a row's values are not consecutive in memory
ROUNDING_SCALE_CORR = 0.3  # corr(|a - b|, |b|) above this: errors grow with the value, as rounding's do
ROWS_BUDGET = 1 << 20  # elements of each matrix read again for the rotation null (8 MiB in float64)
# A matrix pair whose z stays this far out under the widest null possible skips the estimate: under
# no null does that happen (p < 1e-88), so choosing on it leaves every null distribution as it was.
Z_DECISIVE = 20.0


def widest_inflation(shape: tuple[int, ...]) -> float:
    """The largest ``null_inflation`` any pair of this shape can have: ``||X^T Y||_F <= ||X|| ||Y||``
    bounds both rotation nulls, giving ``(n - 1) / cols`` and ``(n - 1) / rows``; 1 for a vector."""
    if len(shape) < 2 or not shape[0]:
        return 1.0
    rows = shape[0]
    n = math.prod(shape)
    cols = n // rows
    if rows < 2 or cols < 2:
        return 1.0
    return max(1.0, (n - 1) / min(rows, cols))


def null_inflation(
    a: np.ndarray, b: np.ndarray, mean_a: float, mean_b: float, shuffle_var: float, *, seed: int = 0
) -> float:
    """How much wider than the shuffle null the cross-product's null is, for matrices (>= 1).

    With ``X``, ``Y`` the centred ``[rows, cols]`` matrices and ``S = sum(X * Y)``, a Haar-random
    rotation of the reference's columns gives ``Var S = ||X^T Y||_F^2 / cols`` and one of its rows
    ``Var S = ||X Y^T||_F^2 / rows``. Both are exact under their null whatever structure the other
    axis carries (e.g. token rows that every model with this tokenizer organises alike), which the
    shuffle null ``||X||^2 ||Y||^2 / (n - 1)`` ignores. The larger, never below the shuffle's, is
    used. Both norms split into a same-row part (growing with rows) and a cross-row part (growing
    with rows squared), so they are estimated on a random subset of rows and scaled up part by part.
    """
    if a.ndim < 2 or not shuffle_var > 0:
        return 1.0
    rows = a.shape[0]
    cols = a.size // rows if rows else 0
    if rows < 2 or cols < 2:
        return 1.0
    s = int(min(rows, max(2, ROWS_BUDGET // cols)))
    pick = np.sort(np.random.default_rng(seed + 1).choice(rows, s, replace=False)) if s < rows else None
    # float32 products: the estimate's sampling error dwarfs their rounding, at half the cost.
    x = (_rows(a, pick, cols) - mean_a).astype(np.float32)
    y = (_rows(b, pick, cols) - mean_b).astype(np.float32)
    same_c = float(np.sum(_row_dots(x, x) * _row_dots(y, y)))
    same_r = float(np.sum(_row_dots(x, y) ** 2))
    if s <= cols:  # s x s Gram matrices are the cheaper route
        gx, gy = matmul(x, x.T), matmul(y, y.T)
        total_c = float(np.sum(gx * gy, dtype=np.float64))  # ||X^T Y||^2 = tr(X X^T Y Y^T)
        total_r = float(np.sum(matmul(x, y.T) ** 2, dtype=np.float64))
    else:
        total_c = float(np.sum(matmul(x.T, y) ** 2, dtype=np.float64))
        total_r = float(
            np.sum(matmul(x.T, x) * matmul(y.T, y), dtype=np.float64)
        )  # ||X Y^T||^2 = tr(X^T X Y^T Y)
    up_same = rows / s
    up_cross = rows * (rows - 1) / (s * (s - 1))
    var_cols = (same_c * up_same + (total_c - same_c) * up_cross) / cols
    var_rows = (same_r * up_same + (total_r - same_r) * up_cross) / rows
    return max(1.0, var_cols / shuffle_var, var_rows / shuffle_var)


def _row_dots(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y, dtype=np.float64)


def _rows(x: np.ndarray, pick: np.ndarray | None, cols: int) -> np.ndarray:
    """The chosen rows of ``x`` as a float64 ``[k, cols]`` matrix (all rows when ``pick`` is None)."""
    part = x if pick is None else take_rows(x, pick)
    return np.asarray(part, dtype=np.float64).reshape(part.shape[0], cols)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """One array of the chunks' samples (no copy for a tensor of one chunk)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0)


def _ratio(num: float, den: float) -> float:
    # Zero variance (a constant tensor) leaves correlation undefined: NaN, never a made-up 0 or 1.
    return num / den if den > 0 else float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Centred cosine of two same-size arrays, in float64."""
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    xa = xa - xa.mean()
    xb = xb - xb.mean()
    return _ratio(float(xa @ xb), math.sqrt(float(xa @ xa) * float(xb @ xb)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (average ranks for ties are not needed at float precision: ordinal ranks),
    on at most RANK_SAMPLE evenly strided values: a descriptive number, precise to ~1/sqrt of that."""
    if a.size < 3:
        return float("nan")
    step = -(-a.size // RANK_SAMPLE)
    return pearson(_ranks(a[::step]), _ranks(b[::step]))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ordinal ranks from one sort (the rank of the i-th smallest is i), not two.

    The values' float32 bits, mapped to unsigned integers in the same order, are packed above each
    position and sorted as one uint64 array (numpy's vectorised sort; its argsort is not): the low
    half of the sorted keys is the argsort. Samples are float32 values already, except those of
    float64 tensors, whose near-ties this orders by position."""
    bits = np.asarray(x, dtype=np.float32).ravel().view(np.uint32).astype(np.uint64)
    negative = bits >> np.uint64(31) == 1
    bits = np.where(negative, bits ^ np.uint64(0xFFFFFFFF), bits | np.uint64(0x80000000))
    order = np.sort((bits << np.uint64(32)) | np.arange(x.size, dtype=np.uint64)) & np.uint64(0xFFFFFFFF)
    ranks = np.empty(x.size, np.int64)
    ranks[order.astype(np.int64)] = np.arange(x.size)
    return ranks


def _kurtosis(x: np.ndarray) -> float:
    if x.size < 4:
        return float("nan")
    centred = x - x.mean()
    squared = centred * centred
    var = float(np.mean(squared))
    return float(np.mean(squared * squared)) / (var * var) if var > 0 else float("nan")
