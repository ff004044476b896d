"""Tests with known nulls, their combination, and multiple-testing control.

Every p-value is carried as a natural logarithm: derived pairs give p far below what a float can
hold (a 4096 x 4096 matrix copied with light noise has z in the thousands), and "p < 1e-12" is only
meaningful if the small values are computed, not rounded to zero. ``p_of`` turns a log-p into a
float for display, clamped at ``P_FLOOR``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

P_FLOOR = 1e-300  # smallest p written as a float; the log-p keeps the true size
LOG_P_FLOOR = -1e6  # a log-p this small stands for "zero within float precision"
_R_MAX = 1.0 - 1e-12  # |r| = 1 exactly would give an infinite statistic
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Evidence:
    """One test's outcome in the form the combination needs: effect, statistic, log p."""

    effect: float  # Pearson r (or the test's own effect size)
    z: float  # the standardised statistic
    log_p: float  # natural log of the p-value (two-sided unless the test says otherwise)
    n: int


def norm_log_sf(z: float) -> float:
    """log P(Z > z) for a standard normal Z, to double precision far into the tail, from the math
    module alone (``scipy.stats`` costs a second of import on every run, ``scipy.special`` half one)."""
    if z < 0:
        return math.log1p(-0.5 * math.erfc(-z / _SQRT2))
    if z < 37:
        return math.log(0.5 * math.erfc(z / _SQRT2))
    # Beyond erfc's range: the Mills-ratio series, relative error below 1e-16 from z = 37 on.
    inv = 1.0 / (z * z)
    series = 1.0 - inv * (1.0 - 3.0 * inv * (1.0 - 5.0 * inv * (1.0 - 7.0 * inv)))
    return -0.5 * z * z - math.log(z) - 0.5 * math.log(2.0 * math.pi) + math.log(series)


def p_of(log_p: float) -> float:
    """The p-value as a float (NaN stays NaN; below ``P_FLOOR`` it is clamped)."""
    if not math.isfinite(log_p):
        return float("nan") if math.isnan(log_p) else P_FLOOR
    return max(math.exp(log_p), P_FLOOR)


def log10_p(log_p: float) -> float:
    return log_p / math.log(10.0)


def coordinate_test(r: float, n: int, inflation: float = 1.0, *, vector: bool = False) -> Evidence:
    """Pearson ``r`` over ``n`` paired values against 'no element-wise correspondence' (two-sided).

    For a vector (norm gains, biases) the null is a uniformly random rotation of the centred
    reference, under which r is distributed exactly as Pearson's r of Gaussian data: Student's t
    with n - 2 degrees of freedom. For a matrix the cross-product's null variance is the coordinate
    shuffle's ``1/(n - 1)`` widened by ``inflation`` (see ``metrics.null_inflation``), and the
    statistic is normal by the central limit theorem over many elements.
    """
    if n < 4 or not math.isfinite(r):
        return Evidence(r, float("nan"), float("nan"), n)
    rc = max(-_R_MAX, min(_R_MAX, r))
    if vector:
        stat = rc * math.sqrt((n - 2) / (1.0 - rc * rc))
        log_sf = _t_log_sf(abs(stat), n - 2)
        z = math.copysign(z_of_log_sf(log_sf), rc)  # the same tail probability on the normal scale
    else:
        z = rc * math.sqrt((n - 1) / max(inflation, 1.0))
        log_sf = norm_log_sf(abs(z))
    return Evidence(r, z, min(math.log(2.0) + log_sf, 0.0), n)


def _t_log_sf(stat: float, df: int) -> float:
    """log P(T > stat) for Student's t with ``df`` degrees of freedom, in log space, from the math
    module alone (to 1e-9 relative of scipy's up to 1e7 degrees of freedom).

    P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2): the regularised incomplete beta function,
    taken directly for small x and as 1 - I_{1-x}(1/2, df/2) otherwise (``1 - x = t^2 / (df + t^2)``
    has no cancellation)."""
    if stat < 0.0:
        return math.log1p(-math.exp(_t_log_sf(-stat, df)))
    a, t2 = df / 2.0, stat * stat
    if t2 == 0.0:
        return math.log(0.5)
    x, one_minus_x = df / (df + t2), t2 / (df + t2)
    # Logs from t^2 / df directly: log(x) of x near 1 would lose digits, and df/2 multiplies it.
    log_x, log_one_minus_x = -math.log1p(t2 / df), math.log(t2) - math.log(df + t2)
    if x < (a + 1.0) / (a + 2.5):
        return math.log(0.5) + _log_betainc(a, 0.5, x, log_x, log_one_minus_x)
    return math.log(0.5) + math.log1p(-math.exp(_log_betainc(0.5, a, one_minus_x, log_one_minus_x, log_x)))


def _log_betainc(a: float, b: float, x: float, log_x: float, log_one_minus_x: float) -> float:
    """log I_x(a, b), one of a and b being 1/2, for x below (a + 1) / (a + b + 2), where its
    continued fraction converges fast: ``x^a (1 - x)^b / (a B(a, b))`` times the fraction, evaluated
    by the modified Lentz method."""
    tiny, eps = 1e-300, 1e-16
    front = a * log_x + b * log_one_minus_x - math.log(a) - _log_beta_half(max(a, b))
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < eps:
            break
    return front + math.log(fraction)


def _log_beta_half(a: float) -> float:
    """log B(a, 1/2) = log Gamma(1/2) - log(Gamma(a + 1/2) / Gamma(a)); for large a the ratio from
    its asymptotic series, where a difference of two lgamma values would lose digits (1e-10 at 5e5)."""
    if a < 1000.0:
        ratio = math.lgamma(a + 0.5) - math.lgamma(a)
    else:
        ratio = 0.5 * math.log(a) - 1.0 / (8.0 * a) + 1.0 / (192.0 * a**3)
    return 0.5 * math.log(math.pi) - ratio


def z_of_log_sf(log_sf: float) -> float:
    """The normal quantile whose upper tail is exp(log_sf), also far beyond float range: Newton's
    method on ``norm_log_sf`` from Abramowitz and Stegun's 26.2.23 (error below 4.5e-4)."""
    if log_sf > -math.log(2.0):  # p above one half: the mirror image of 1 - p
        return -z_of_log_sf(math.log1p(-math.exp(log_sf)))
    t = math.sqrt(-2.0 * log_sf)
    z = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (
        1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))
    )
    for _ in range(8):
        f = norm_log_sf(z)
        # d/dz log sf(z) = -phi(z) / sf(z)
        step = (f - log_sf) / math.exp(-0.5 * z * z - 0.5 * math.log(2.0 * math.pi) - f)
        z += step
        if abs(step) <= 1e-15 * max(1.0, abs(z)):
            break
    return z


def stouffer(zs: Sequence[float], weights: Sequence[float], corr: np.ndarray | None = None) -> float:
    """One-sided weighted Stouffer combination with a known null correlation, in log space.

    ``Z = sum w_i z_i / sqrt(w' R w)`` is standard normal when the z_i are jointly normal with
    correlation R under the null. Weights must be fixed without looking at the z (sizes are).
    """
    z = np.asarray(zs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if not z.size:
        return float("nan")
    r = np.eye(z.size) if corr is None else np.asarray(corr, dtype=np.float64)
    total = float(w @ z) / math.sqrt(max(float(w @ r @ w), 1e-300))
    return norm_log_sf(total)


def cauchy_combine(log_ps: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Cauchy combination (Liu & Xie 2020) of p-values, in log space; NaNs are skipped.

    ``T = sum w_i tan((1/2 - p_i) pi)`` is standard Cauchy when the p_i are uniform, exactly for
    independent and for perfectly dependent p_i and closely in between: the tensors of one model
    are not independent tests (norm gains of neighbouring layers share their outlier dimensions),
    and Fisher's method would overstate the evidence. For tiny p_i the combination is the weighted
    harmonic mean of the p_i, so it never claims more than the strongest test times the number of
    tests, and never less than the strongest test.
    """
    ws = [1.0] * len(log_ps) if weights is None else [float(w) for w in weights]
    pairs = [
        (max(lp, LOG_P_FLOOR), w) for lp, w in zip(log_ps, ws, strict=True) if not math.isnan(lp) and w > 0
    ]
    if not pairs:
        return float("nan")
    total = sum(w for _, w in pairs)
    # Tiny p overflow tan((1/2 - p) pi) = 1/(pi p): those terms are summed as logarithms.
    tiny = [math.log(w / total) - lp - math.log(math.pi) for lp, w in pairs if lp < -30]
    rest = sum(w / total * math.tan((0.5 - math.exp(lp)) * math.pi) for lp, w in pairs if lp >= -30)
    if tiny:
        log_big = _logsumexp(tiny)
        if log_big > 30:
            # T is huge: p = arctan(1/T) / pi = 1 / (pi T) to 1e-26 relative. A negative rest
            # (p near 1) shifts T by at most a few thousandths of it and is dropped.
            return max(
                LOG_P_FLOOR, -math.log(math.pi) - _log_add(log_big, math.log(rest) if rest > 0 else -math.inf)
            )
        rest += math.exp(log_big)
    if rest > 1e6:  # 0.5 - atan(T)/pi cancels; arctan(1/T)/pi keeps the digits
        return math.log(math.atan(1.0 / rest) / math.pi)
    return math.log(min(1.0, max(0.5 - math.atan(rest) / math.pi, 1e-300)))


def fisher_combine(log_ps: Sequence[float]) -> float:
    """Fisher's method in log space: -2 sum log p ~ chi2(2k) for independent uniform p, whose tail
    has a closed form for even degrees of freedom: P(chi2(2k) > 2s) = e^-s sum_{i<k} s^i / i!."""
    finite = [lp for lp in log_ps if math.isfinite(lp)]
    if not finite:
        return float("nan")
    s = -sum(finite)
    if s <= 0.0:
        return 0.0
    return min(0.0, -s + _logsumexp([i * math.log(s) - math.lgamma(i + 1.0) for i in range(len(finite))]))


def holm(log_ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error control under any dependence), in log space."""
    order = sorted((lp, i) for i, lp in enumerate(log_ps) if math.isfinite(lp))
    m = len(order)
    out = [float("nan")] * len(log_ps)
    running = -math.inf
    for rank, (lp, i) in enumerate(order):
        running = max(running, min(0.0, lp + math.log(m - rank)))
        out[i] = running
    return out


def identity_test(matched: np.ndarray, units: np.ndarray | None = None) -> Evidence:
    """Is a matching the identity? Spearman of unit index vs matched index (Zhu et al. 2025), one-sided.

    When training treats units symmetrically, an independent model's matching is a uniformly
    random assignment: rho has mean 0 and variance 1/(k - 1), and rho = 1 happens with probability
    exactly 1/k! for a full permutation, which is used when the matching is the identity.
    """

    matched = np.asarray(matched)
    units = np.arange(matched.size) if units is None else np.asarray(units)
    k = matched.size
    if k < 3:
        return Evidence(float("nan"), float("nan"), float("nan"), k)
    rho = _spearman(units, matched)
    z = rho * math.sqrt(k - 1)
    if k <= 7 and np.unique(matched).size == k:
        # Few units (heads): the exact distribution over all k! matchings, ties broken at random.
        import itertools

        null = np.array([_spearman(np.arange(k), np.array(p)) for p in itertools.permutations(range(k))])
        order = np.argsort(np.argsort(units))  # Spearman depends on ranks only
        rho = _spearman(order, np.argsort(np.argsort(matched)))
        return Evidence(
            rho, z, _randomised_log_p(rho, null, _data_rng(matched, units), include_observed=False), k
        )
    log_p = norm_log_sf(z)
    if np.array_equal(units, matched):
        log_p = min(log_p, -math.lgamma(k + 1))
    return Evidence(rho, z, log_p, k)


def prediction_test(observed: float, null: Sequence[float]) -> Evidence:
    """Is ``observed`` above what R draws of its null give? One-sided Student prediction interval.

    If the observed value and the R null draws are exchangeable normal draws, ``(x - mean) /
    (sd * sqrt(1 + 1/R))`` is exactly t with R - 1 degrees of freedom: the estimated spread is paid
    for, and the tail extrapolates beyond the 1/(R + 1) floor of a rank test.
    """
    draws = np.asarray(null, dtype=np.float64)
    r = draws.size
    if r < 3 or not math.isfinite(observed):
        return Evidence(observed, float("nan"), float("nan"), r)
    sd = float(draws.std(ddof=1))
    if sd <= 0:
        return Evidence(observed, float("nan"), float("nan"), r)
    stat = (observed - float(draws.mean())) / (sd * math.sqrt(1.0 + 1.0 / r))
    return Evidence(observed, stat, _t_log_sf(stat, r - 1), r)


def layer_diagonal_test(
    values: Sequence[Sequence[float | None]], *, draws: int = 4999, seed: int = 0
) -> tuple[Evidence, tuple[int, int]]:
    """Does the i x j layer matrix have a diagonal (plain, shifted or strided)? A permutation test.

    The statistic is the best mean similarity along any map ``j = stride * i + offset`` that
    reaches every layer of the shallower model (identity for equal depths; shifts and strides when
    layers were dropped); its null permutes the reference's layers, under which a matrix without
    layer correspondence is exchangeable. Taking the best map inside the statistic, and again inside
    every permutation, pays for having searched. Exact when the reference has at most 7 layers (all
    permutations), otherwise ``draws`` random ones (p >= 1 / (draws + 1)).
    Returns the evidence and the winning (stride, offset).
    """
    import itertools

    m = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=np.float64)
    transposed = m.ndim == 2 and m.shape[0] > m.shape[1]
    if transposed:  # the deeper model is the suspect: map reference layers onto it instead
        m = m.T
    if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 2 or np.isnan(m).all():
        return Evidence(float("nan"), float("nan"), float("nan"), 0), (1, 0)
    maps = _layer_maps(*m.shape)
    if not maps:
        return Evidence(float("nan"), float("nan"), float("nan"), 0), (1, 0)
    observed, best = _best_map(m, maps)
    cols = m.shape[1]
    rng = _data_rng(m, seed)
    if math.factorial(cols) <= draws + 1:
        null = _best_means(m, np.array(list(itertools.permutations(range(cols)))), maps)
        log_p = _randomised_log_p(observed, null, rng, include_observed=False)
    else:
        null = _best_means(m, permutations(rng, cols, draws), maps)
        log_p = _randomised_log_p(observed, null, rng, include_observed=True)
    return Evidence(observed, float("nan"), log_p, m.shape[0]), best


def permutations(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """``draws`` random permutations of ``range(n)`` as rows: the very ones ``rng.permutation(n)``
    would give one call at a time (the same stream, row after row), in one call."""
    return rng.permuted(np.broadcast_to(np.arange(n), (draws, n)), axis=1)


def _data_rng(*arrays) -> np.random.Generator:
    """A generator seeded by the bytes of the data: reproducible for one input, and as good as
    independent of a rank statistic across inputs (what randomised tie-breaking needs)."""
    import zlib

    crc = 0
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a).tobytes(), crc)
    return np.random.default_rng(crc)


def _randomised_log_p(
    observed: float, null: np.ndarray, rng: np.random.Generator, *, include_observed: bool
) -> float:
    """Permutation p with ties broken at random: exactly uniform under the null, where the plain
    count is discrete and conservative (its mass near 1 would drag a Cauchy combination up).
    ``include_observed`` adds the observed value to a Monte Carlo null (then p >= 1/(B + 1))."""
    tol = 1e-12 * max(1.0, abs(observed))
    greater = int(np.sum(null > observed + tol))
    ties = int(np.sum(np.abs(null - observed) <= tol)) + (1 if include_observed else 0)
    total = null.size + (1 if include_observed else 0)
    return math.log((greater + rng.uniform(1e-9, 1.0) * ties) / total)


def _layer_maps(rows: int, cols: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Every map j = stride * i + offset (stride >= 1, offset >= 0) that stays inside ``cols``."""
    i = np.arange(rows)
    out = []
    stride = 1
    while stride * (rows - 1) < cols:
        for offset in range(cols - stride * (rows - 1)):
            out.append((stride, offset, i, stride * i + offset))
        stride += 1
    return out


def _best_means(m: np.ndarray, perms: np.ndarray, maps, block: int = 512) -> np.ndarray:
    """``_best_map``'s best mean for ``m`` with its columns permuted by each row of ``perms``, all
    permutations of a block at once (the permutation null's thousands of draws, without a loop)."""
    best = np.full(len(perms), -np.inf)
    for start in range(0, len(perms), block):
        chunk = perms[start : start + block]
        for _, _, i, j in maps:
            vals = m[i[:, None], chunk[:, j].T]  # [rows of the map, permutations]: m[i, p[j]]
            finite = np.isfinite(vals)
            count = finite.sum(axis=0)
            total = np.where(finite, vals, 0.0).sum(axis=0)
            mean = np.where(count > 0, total / np.maximum(count, 1), -np.inf)
            np.maximum(best[start : start + block], mean, out=best[start : start + block])
    return best


def _best_map(m: np.ndarray, maps) -> tuple[float, tuple[int, int]]:
    best, where = -math.inf, (1, 0)
    for stride, offset, i, j in maps:
        vals = m[i, j]
        vals = vals[np.isfinite(vals)]
        if vals.size and vals.mean() > best:
            best, where = float(vals.mean()), (stride, offset)
    return best, where


def detectable_r(
    sizes: Sequence[int],
    inflations: Sequence[float],
    alpha: float,
    *,
    extra_tests: int = 0,
    corr_weight: float = 1.0,
) -> float:
    """The smallest |r|, common to all tensors, at which the combined p would reach ``alpha``.

    Each tensor contributes its expected statistic ``r sqrt((n - 1) / inflation)``; the combination
    is the one the verdict uses (size-weighted Stouffer over tensors, then Cauchy with
    ``extra_tests`` further tests at their null median). This is the median detectable effect: a
    relationship of this size is found about half the time.
    """
    usable = [(n, max(k, 1.0)) for n, k in zip(sizes, inflations, strict=True) if n >= 4]
    if not usable:
        return float("nan")
    target = math.log(alpha)
    scale = np.array([math.sqrt((n - 1) / k) for n, k in usable])
    # Size-weighted Stouffer of z_k = r * scale_k: Z = r * |scale| when the tensors are independent;
    # ``corr_weight`` = w' R w / w' w carries the dependence the verdict accounted for.
    gain = float(np.sqrt(scale @ scale)) / math.sqrt(max(corr_weight, 1e-12))

    def combined(r: float) -> float:
        return cauchy_combine([norm_log_sf(r * gain)] + [math.log(0.5)] * extra_tests)

    if combined(_R_MAX) > target:
        return float("inf")
    lo, hi = 0.0, _R_MAX
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if combined(mid) > target else (lo, mid)
    return hi


def percentile(value: float, null: Sequence[float]) -> float:
    """Where ``value`` falls among null values of the same statistic (0-100; a screening number)."""
    draws = np.asarray([v for v in null if math.isfinite(v)], dtype=np.float64)
    if not draws.size or not math.isfinite(value):
        return float("nan")
    return 100.0 * float(np.mean(draws <= value))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / den if den > 0 else float("nan")


def _logsumexp(xs: Sequence[float]) -> float:
    top = max(xs)
    return top + math.log(sum(math.exp(x - top) for x in xs))


def _log_add(a: float, b: float) -> float:
    if b == -math.inf:
        return a
    return _logsumexp([a, b])
