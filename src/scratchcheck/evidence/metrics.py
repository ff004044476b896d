"""Per-pair numbers, computed in one streaming pass with float64 accumulation.

Two tensors are walked chunk by chunk: each chunk is cast to float64, its means and centred
co-moments are merged into running totals (Chan et al.'s pairwise update, which keeps Pearson exact
for tensors with a large common offset, where the textbook ``sum(ab) - n*mean(a)*mean(b)`` loses every
digit), and the pages behind it are handed back. Peak memory is a few chunks, whatever the tensor size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..io.mapping import drop_pages, released, take_rows

CHUNK = 1 << 18  # elements per streaming step: 2 MiB per float64 chunk, cache-friendly
SAMPLE = 1 << 16  # elements kept for rank statistics and the shape of the difference


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
    # One side's sampled values all lie on a coarser float grid (bf16, fp16, fp8): the trace of a
    # change of precision, where the difference is rounding rather than an edit.
    on_coarser_grid: bool = False


class _Moments:
    """Running count, means and centred second moments of a pair of streams."""

    def __init__(self) -> None:
        self.n = 0
        self.mean_a = self.mean_b = 0.0
        self.m_aa = self.m_bb = self.m_ab = 0.0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        k = a.size
        if k == 0:
            return
        ma, mb = float(a.mean()), float(b.mean())
        da, db = a - ma, b - mb
        caa, cbb, cab = float(da @ da), float(db @ db), float(da @ db)
        n = self.n
        total = n + k
        dma, dmb = ma - self.mean_a, mb - self.mean_b
        self.m_aa += caa + dma * dma * n * k / total
        self.m_bb += cbb + dmb * dmb * n * k / total
        self.m_ab += cab + dma * dmb * n * k / total
        self.mean_a += dma * k / total
        self.mean_b += dmb * k / total
        self.n = total


def _chunks(x: np.ndarray, by_rows: bool):
    """Flat float64 chunks of ``x`` and the stored-dtype slice each came from. Two tensors walked
    together must be cut alike: ``by_rows`` when either is a strided view."""
    flat = x.reshape(-1) if not by_rows else None
    if flat is not None:
        for start in range(0, flat.size, CHUNK):
            part = flat[start : start + CHUNK]
            yield part, part.astype(np.float64)
        return
    # A strided view (e.g. a transposed matrix): walk its leading axis in row blocks.
    rows = max(1, CHUNK // max(1, int(np.prod(x.shape[1:], dtype=np.int64))))
    for start in range(0, x.shape[0], rows):
        part = np.ascontiguousarray(x[start : start + rows]).reshape(-1)
        yield part, part.astype(np.float64)


def pair_metrics(a: np.ndarray, b: np.ndarray, *, seed: int = 0) -> PairMetrics:
    """Every per-pair number for two arrays of one shape (any numeric dtype; views are not copied)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    n = int(a.size)
    moments = _Moments()
    sum_dd = 0.0
    max_diff = 0.0
    unequal = 0
    same_bits = a.dtype == b.dtype
    # An evenly strided sample with a seeded random phase: cheap to take while streaming.
    step = max(1, n // SAMPLE)
    position = int(np.random.default_rng(seed).integers(step))
    offset = 0
    samples_a, samples_b = [], []
    by_rows = not (a.flags.c_contiguous and b.flags.c_contiguous)
    for (raw_a, xa), (raw_b, xb) in zip(_chunks(a, by_rows), _chunks(b, by_rows), strict=True):
        moments.add(xa, xb)
        # The difference is accumulated directly: deriving it from the moments would cancel
        # catastrophically for the near-identical pairs (quantised copies) where it matters most.
        diff = xa - xb
        sum_dd += float(diff @ diff)
        if diff.size:
            max_diff = max(max_diff, float(diff.max()), -float(diff.min()))
        unequal += int(np.count_nonzero(diff))  # NaN != 0 too, so NaN pairs count as unequal
        if same_bits:
            same_bits = np.array_equal(raw_a.view(np.uint8), raw_b.view(np.uint8))
        samples_a.append(xa[position - offset :: step].copy())  # a copy: a view would pin the chunk
        samples_b.append(xb[position - offset :: step].copy())
        offset += xa.size
        position += -(-(offset - position) // step) * step
        drop_pages(raw_a)
        drop_pages(raw_b)
    sample_a = np.concatenate(samples_a) if samples_a else np.zeros(0)
    sample_b = np.concatenate(samples_b) if samples_b else np.zeros(0)
    mean_a, mean_b = moments.mean_a, moments.mean_b
    var_a, var_b = moments.m_aa, moments.m_bb
    # Raw (uncentred) sums from the centred ones: no cancellation, all terms are exact-ish sums.
    sum_ab = moments.m_ab + n * mean_a * mean_b
    norm_a = math.sqrt(var_a + n * mean_a * mean_a)
    norm_b = math.sqrt(var_b + n * mean_b * mean_b)
    var_d = max(sum_dd - n * (mean_a - mean_b) ** 2, 0.0)
    with released(a, b):  # the rows it re-reads are scattered: hand their pages back
        inflation = null_inflation(a, b, mean_a, mean_b, var_a * var_b / max(n - 1, 1), seed=seed)
    return PairMetrics(
        n=n,
        cosine=_ratio(sum_ab, norm_a * norm_b),
        pearson=_ratio(moments.m_ab, math.sqrt(var_a * var_b)),
        rel_l2=_ratio(math.sqrt(sum_dd), norm_b),
        max_abs_diff=max_diff,
        frac_equal=(n - unequal) / n if n else float("nan"),
        bit_identical=bool(same_bits and n > 0),
        cosine_null=_ratio(n * mean_a * mean_b, norm_a * norm_b),
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=math.sqrt(var_a / n) if n else float("nan"),
        std_b=math.sqrt(var_b / n) if n else float("nan"),
        spearman=spearman(sample_a, sample_b),
        delta_corr=_ratio(moments.m_ab - var_b, math.sqrt(var_d * var_b)),
        delta_kurtosis=_kurtosis(sample_a - sample_b),
        sample_a=sample_a,
        sample_b=sample_b,
        delta_scale_corr=pearson(np.abs(sample_a - sample_b), np.abs(sample_b))
        if sample_a.size > 2
        else math.nan,
        ndim=a.ndim,
        on_coarser_grid=_on_grid(sample_a) or _on_grid(sample_b),
        null_inflation=inflation,
    )


ROWS_BUDGET = 1 << 20  # elements of each matrix read again for the rotation null (8 MiB in float64)


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
    x = _rows(a, pick, cols) - mean_a
    y = _rows(b, pick, cols) - mean_b
    same_c = float(np.sum(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y)))
    same_r = float(np.sum(np.einsum("ij,ij->i", x, y) ** 2))
    if s <= cols:  # s x s Gram matrices are the cheaper route
        gx, gy = x @ x.T, y @ y.T
        total_c = float(np.sum(gx * gy))  # ||X^T Y||^2 = tr(X X^T Y Y^T)
        total_r = float(np.sum((x @ y.T) ** 2))
    else:
        total_c = float(np.sum((x.T @ y) ** 2))
        total_r = float(np.sum((x.T @ x) * (y.T @ y)))  # ||X Y^T||^2 = tr(X^T X Y^T Y)
    up_same = rows / s
    up_cross = rows * (rows - 1) / (s * (s - 1))
    var_cols = (same_c * up_same + (total_c - same_c) * up_cross) / cols
    var_rows = (same_r * up_same + (total_r - same_r) * up_cross) / rows
    return max(1.0, var_cols / shuffle_var, var_rows / shuffle_var)


def _rows(x: np.ndarray, pick: np.ndarray | None, cols: int) -> np.ndarray:
    """The chosen rows of ``x`` as a float64 ``[k, cols]`` matrix (all rows when ``pick`` is None)."""
    part = x if pick is None else take_rows(x, pick)
    return np.asarray(part, dtype=np.float64).reshape(part.shape[0], cols)


def _on_grid(x: np.ndarray) -> bool:
    import ml_dtypes

    if not x.size or not np.all(np.isfinite(x)):
        return False
    for dtype in (ml_dtypes.float8_e4m3fn, np.float16, ml_dtypes.bfloat16):
        with np.errstate(over="ignore", invalid="ignore"):
            if np.array_equal(x.astype(dtype).astype(np.float64), x):
                return True
    return False


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
    """Rank correlation (average ranks for ties are not needed at float precision: ordinal ranks)."""
    if a.size < 3:
        return float("nan")
    return pearson(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))


def _kurtosis(x: np.ndarray) -> float:
    if x.size < 4:
        return float("nan")
    centred = x - x.mean()
    var = float(np.mean(centred**2))
    return float(np.mean(centred**4)) / (var * var) if var > 0 else float("nan")
