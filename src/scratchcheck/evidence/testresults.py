"""The tests of one component, as ``TestResult`` records that carry their own method text.

Each builder here runs one family's combination and writes the sentence that says what its null is;
reports print that sentence (``TestResult.null``) and never describe a test in words of their own.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..results import LayerMatrix, TestResult
from . import stats, units
from .measured import MeasuredPair

COORDINATE_NULL = (
    "no element-wise correspondence: the reference's values in random order (vectors: a random rotation, "
    "exact Student t; matrices: the wider of the shuffle and the row/column rotation nulls; gate blocks of "
    "recurrent weights and fused tensors centred and tested block by block), per tensor; one-sided "
    "size-weighted Stouffer across tensors with the null correlation of vectors that share a basis"
)


def coordinate_log_p(rows: Sequence[MeasuredPair]) -> float:
    """Size-weighted Stouffer over the tensors' coordinate tests, with their null correlation.

    Distinct matrices are distinct parameters: under the null their statistics are uncorrelated
    (their covariance under a common basis rotation is <X_k'Y_k, X_j'Y_j> / d, which vanishes
    unless the tensors are near-duplicates). Vectors of one basis are not: norm gains of
    different layers share outlier dimensions, and the covariance of their statistics is exactly
    <x_k, x_j><y_k, y_j> for the centred unit vectors, which enters the combination.
    """
    if not rows:
        return float("nan")
    return stats.stouffer([m.test.z for m in rows], [m.weight for m in rows], null_correlation(rows))


def coordinate_result(rows: Sequence[MeasuredPair]) -> TestResult:
    log_p = coordinate_log_p(rows)
    w = np.asarray([m.weight for m in rows])
    corr = null_correlation(rows)
    rs = [m.pearson for m in rows]
    return TestResult(
        "coordinate-shuffle",
        statistic=statistics.median(rs),
        p_value=stats.p_of(log_p),
        null=COORDINATE_NULL,
        n=len(rows),
        detail={
            "log_p": log_p,
            "log10_p": stats.log10_p(log_p),
            "log10_p_cauchy": stats.log10_p(stats.cauchy_combine([m.test.log_p for m in rows])),
            "median_pearson": statistics.median(rs),
            "tensors_p_below_0.001": sum(m.test.log_p < math.log(1e-3) for m in rows),
            "max_null_inflation": max(m.metrics.null_inflation for m in rows),
            "corr_weight": float(w @ corr @ w / (w @ w)) if w @ w > 0 else 1.0,
        },
    )


def null_correlation(rows: Sequence[MeasuredPair]) -> np.ndarray:
    corr = np.eye(len(rows))
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, m in enumerate(rows):
        if m.directions is not None:
            by_length[m.directions[0].size].append(i)
    for idx in by_length.values():
        if len(idx) > 1:
            a = np.stack([rows[i].directions[0] for i in idx]).astype(np.float64)
            b = np.stack([rows[i].directions[1] for i in idx]).astype(np.float64)
            block = (a @ a.T) * (b @ b.T)
            np.fill_diagonal(block, 1.0)
            corr[np.ix_(idx, idx)] = block
    return corr


def layer_result(matrix: LayerMatrix, ev: stats.Evidence, stride: int, offset: int) -> TestResult:
    return TestResult(
        "layer-diagonal",
        statistic=ev.effect,
        p_value=stats.p_of(ev.log_p),
        null=f"no layer correspondence ({matrix.role}): reference layers in random order; the best "
        "diagonal (shifted or strided) is searched in the data and in every permutation alike",
        n=ev.n,
        detail={"log_p": ev.log_p, "log10_p": stats.log10_p(ev.log_p), "stride": stride, "offset": offset},
    )


def layer_results(
    matrices: Sequence[LayerMatrix], min_layers: int
) -> tuple[list[LayerMatrix], list[TestResult]]:
    """The diagonal test of every layer matrix with enough layers; matrices get their p-value."""
    out_matrices, results = [], []
    for matrix in matrices:
        if min(len(matrix.values), len(matrix.values[0]) if matrix.values else 0) < min_layers:
            out_matrices.append(matrix)  # too few layers for a permutation test to say anything
            continue
        ev, (stride, offset) = stats.layer_diagonal_test(matrix.values)
        finite = math.isfinite(ev.log_p)
        out_matrices.append(replace(matrix, p_value=stats.p_of(ev.log_p) if finite else None))
        if finite:
            results.append(layer_result(matrix, ev, stride, offset))
    return out_matrices, results


def matching_results(matchings: Sequence[units.Matching]) -> list[TestResult]:
    out = []
    for group in sorted({m.group for m in matchings}):
        ms = [m for m in matchings if m.group == group]
        sim = stats.cauchy_combine([m.similarity.log_p for m in ms])
        ident = stats.cauchy_combine([m.identity.log_p for m in ms])
        per_layer = [
            {
                "layer": m.layer,
                "matched": f"{m.units} of {m.total}",
                "similarity": round(m.matched_similarity, 4),
                "null_similarity": round(m.null_similarity, 4),
                "identity_fraction": round(m.identity_fraction, 4),
                "log10_p": stats.log10_p(m.similarity.log_p),
                "seconds": round(m.seconds, 3),
            }
            for m in ms
        ]
        if math.isfinite(sim):
            out.append(
                TestResult(
                    f"unit-matching-similarity ({group})",
                    statistic=statistics.mean(m.matched_similarity for m in ms),
                    p_value=stats.p_of(sim),
                    null="matched similarity between unrelated weights: the same Hungarian matching "
                    f"against the reference with its residual basis randomly permuted ({units.NULL_DRAWS} "
                    "draws per layer, Student prediction interval), Cauchy-combined across layers",
                    n=len(ms),
                    detail={"log_p": sim, "log10_p": stats.log10_p(sim), "layers": per_layer},
                )
            )
        if math.isfinite(ident):
            out.append(
                TestResult(
                    f"unit-matching-identity ({group})",
                    statistic=statistics.mean(
                        m.identity.effect for m in ms if math.isfinite(m.identity.effect)
                    ),
                    p_value=stats.p_of(ident),
                    null="the matching is a uniformly random assignment (units are exchangeable in "
                    "training): Spearman of unit index vs matched index, Cauchy-combined across layers",
                    n=len(ms),
                    detail={"log_p": ident, "log10_p": stats.log10_p(ident)},
                )
            )
    return out


def combined_result(
    tests: Sequence[TestResult], log_p_adjusted: float, log_p: float, family: int
) -> TestResult:
    return TestResult(
        "combined",
        statistic=len(tests),
        p_value=stats.p_of(log_p_adjusted),
        null="the tests above combined by the Cauchy method (valid under dependence), then "
        f"Holm-adjusted across {family} component/reference comparison(s)",
        n=len(tests),
        detail={"log10_p": stats.log10_p(log_p_adjusted), "log10_p_unadjusted": stats.log10_p(log_p)},
    )


def spread_result(log_p: float, left_out: Sequence[MeasuredPair], share: float, passed: bool) -> TestResult:
    return TestResult(
        "spread",
        statistic=share,
        p_value=stats.p_of(log_p) if math.isfinite(log_p) else None,
        null="the coordinate and unit-matching evidence with the strongest tenth of the tensors and layers "
        "(at least one) left out, Cauchy-combined and Holm-adjusted like the full test; a derived verdict "
        "needs it below the derived threshold and the tensors significant alone to hold at least 1% of the "
        "compared parameters (statistic: that share)",
        n=len(left_out),
        detail={
            "log10_p": stats.log10_p(log_p) if math.isfinite(log_p) else None,
            "left_out": [m.label for m in left_out],
            "passed": passed,
        },
    )


def screening(value: float, role: str, null_panel: list[float] | None = None) -> TestResult:
    """A screening statistic (correlation of per-layer std curves): a percentile, never a verdict."""
    pct = stats.percentile(value, null_panel) if null_panel else float("nan")
    return TestResult(
        f"screening: std-curve correlation ({role})",
        statistic=value,
        p_value=None,
        null="percentile among independent pairs of a reference panel"
        if null_panel
        else "no null panel: two unrelated models typically give a high value too; not evidence",
        n=len(null_panel or []),
        detail={"percentile": pct},
    )


def std_curves(rows: Sequence[MeasuredPair]) -> list[TestResult]:
    """Per role with three or more layers: the correlation of the two per-layer std curves."""
    curves: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for m in rows:
        role, layer = units.canonical(m.pair.role, m.pair.layer, m.label)
        if layer is not None and math.isfinite(m.metrics.std_a) and math.isfinite(m.metrics.std_b):
            curves[role].append((layer, m.metrics.std_a, m.metrics.std_b))
    out = []
    for role, points in sorted(curves.items()):
        if len(points) >= 3:
            a = np.array([p[1] for p in sorted(points)])
            b = np.array([p[2] for p in sorted(points)])
            if a.std() > 0 and b.std() > 0:
                out.append(screening(float(np.corrcoef(a, b)[0, 1]), role))
    return out
