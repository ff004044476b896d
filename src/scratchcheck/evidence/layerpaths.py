"""Layer correspondence that is a map, not a line: the best path of a few runs through the layer matrix.

Depth up-scaling (SOLAR: layers [0..k) and [j..N) of the parent stacked), surgery that drops a block
from the middle, or a reordering give a layer matrix whose bright cells form a few diagonal runs,
not one line. The statistic is the best mean similarity over maps that give every suspect layer a
reference layer and consist of at most ``max_runs`` runs (within a run both layer indices step by
one; between runs the reference index may jump anywhere, backwards and to layers already used).
The null permutes the reference's layers, which destroys runs but keeps every value, and the best
map is searched inside every permutation too, so the search is paid for (as in
``stats.layer_diagonal_test``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..align.layermap import describe
from ..results import LayerMatrix, TestResult
from .stats import Evidence, _data_rng, _randomised_log_p, log10_p, p_of, permutations

MIN_LAYERS = 4  # as for the diagonal test: fewer orderings cannot reach p < 0.05
MAX_RUNS = 3  # SOLAR-style up-scaling needs 2; a third covers one more splice
DRAWS = 999


def best_totals(stack: np.ndarray, max_runs: int = MAX_RUNS) -> np.ndarray:
    """Best total similarity of a map of at most ``max_runs`` runs, for each matrix of a stack.

    ``stack`` is ``[matrices, suspect layers, reference layers]`` without missing entries. A dynamic
    programme over rows: ``f[k, j]`` is the best total of the rows so far with the last row on
    column j inside run k; a row either continues its run (column j-1 before) or starts run k+1 on
    any column.
    """
    f = np.full((stack.shape[0], max_runs, stack.shape[2]), -np.inf)
    f[:, 0, :] = stack[:, 0, :]
    for i in range(1, stack.shape[1]):
        f = _step(f) + stack[:, i, None, :]
    return f.reshape(stack.shape[0], -1).max(axis=1)


def best_map(m: np.ndarray, max_runs: int = MAX_RUNS) -> list[tuple[int, int]]:
    """The map behind the best total of one matrix, as (row, column) pairs."""
    tables = [np.full((1, max_runs, m.shape[1]), -np.inf)]
    tables[0][0, 0] = m[0]
    for i in range(1, m.shape[0]):
        tables.append(_step(tables[-1]) + m[i])
    k, j = np.unravel_index(int(np.argmax(tables[-1][0])), tables[-1][0].shape)
    path = [(m.shape[0] - 1, int(j))]
    for i in range(m.shape[0] - 1, 0, -1):
        before = tables[i - 1][0]
        stay = before[k, j - 1] if j > 0 else -np.inf
        if k > 0 and before[k - 1].max() > stay:
            k, j = k - 1, int(np.argmax(before[k - 1]))
        else:
            j -= 1
        path.append((i - 1, int(j)))
    return path[::-1]


def _step(f: np.ndarray) -> np.ndarray:
    """The best total before the next row, per (run, column): continue the run or start the next."""
    cont = np.full_like(f, -np.inf)
    cont[:, :, 1:] = f[:, :, :-1]
    jump = np.full_like(f, -np.inf)
    jump[:, 1:, :] = f[:, :-1, :].max(axis=2, keepdims=True)
    return np.maximum(cont, jump)


def run_map_test(
    values: Sequence[Sequence[float | None]], *, max_runs: int = MAX_RUNS, draws: int = DRAWS
) -> tuple[Evidence, list[tuple[int, int]]]:
    """Is there a map of at most ``max_runs`` diagonal runs through the layer matrix? A permutation test.

    Rows are suspect layers, columns reference layers. Returns the evidence (effect: the best mean
    similarity) and the best map as (row, column) index pairs. Exact over all orderings with at
    most 6 reference layers, otherwise ``draws`` random ones (p >= 1 / (draws + 1)).
    """
    import itertools

    m = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 2 or np.isnan(m).all():
        return Evidence(float("nan"), float("nan"), float("nan"), 0), []
    m = np.nan_to_num(m, nan=0.0)  # a missing entry counts as no similarity
    rows, cols = m.shape
    observed = float(best_totals(m[None], max_runs)[0]) / rows
    rng = _data_rng(m, np.array([max_runs]))
    exact = math.factorial(cols) <= draws + 1
    orders = np.array(list(itertools.permutations(range(cols)))) if exact else permutations(rng, cols, draws)
    null = np.concatenate(
        [
            best_totals(m[:, chunk].transpose(1, 0, 2), max_runs)
            for chunk in np.array_split(orders, -(-len(orders) // 512))
        ]
    )
    log_p = _randomised_log_p(observed, null / rows, rng, include_observed=not exact)
    return Evidence(observed, float("nan"), log_p, rows), best_map(m, max_runs)


def layer_map_result(matrix: LayerMatrix) -> TestResult | None:
    """The run-map test of one layer matrix whose depths differ (up-scaled or cut models), as a
    test record carrying the map it found; None where the depths agree (the diagonal test covers
    those) or the matrix is too small to test."""
    rows, cols = len(matrix.suspect_layers), len(matrix.reference_layers)
    if rows == cols or min(rows, cols) < MIN_LAYERS:
        return None
    ev, path = run_map_test(matrix.values)
    if not math.isfinite(ev.log_p):
        return None
    found = [(matrix.suspect_layers[i], matrix.reference_layers[j]) for i, j in path]
    return TestResult(
        "layer-map",
        statistic=ev.effect,
        p_value=p_of(ev.log_p),
        null=f"no layer correspondence ({matrix.role}): reference layers in random order; the best map of "
        f"at most {MAX_RUNS} diagonal runs (repeats and jumps allowed) is searched in the data and in "
        "every permutation alike",
        n=ev.n,
        detail={"log_p": ev.log_p, "log10_p": log10_p(ev.log_p), "map": describe(found)},
    )
