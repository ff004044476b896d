"""Which suspect layer corresponds to which reference layer, read from the i x j similarity matrix.

A derived model shows a diagonal (identity), a shifted one (offset: layers added or removed at one
end) or a sub-sampled one (stride: every k-th layer kept); an independent model shows nothing. Real
derivations also build maps that are no line: depth up-scaling (SOLAR) repeats a block of layers,
surgery drops a block from the middle or reorders layers. Each suspect layer then takes its own
best reference layer (``repeated`` when a reference layer is used more than once, ``reordered``
otherwise). The off-diagonal entries are the null from the same pair of models, so a row's best
match only counts when it stands out from chance for that many comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SIMILARITY = 0.2  # below this a "best" layer is never trusted, whatever the sample size


@dataclass(frozen=True)
class LayerMap:
    kind: str  # identity | offset | stride | repeated | reordered | none
    mapping: list[tuple[int, int]]  # (suspect layer, reference layer)

    def target(self, layer: int) -> int | None:
        """The reference layer for ``layer`` under this map (None if the map has no entry)."""
        return dict(self.mapping).get(layer)

    @property
    def repeats(self) -> bool:
        """Some reference layer is the source of more than one suspect layer."""
        targets = [j for _, j in self.mapping]
        return len(set(targets)) < len(targets)


def describe(mapping: list[tuple[int, int]] | list[list[int]]) -> str:
    """``(suspect, reference)`` pairs as runs in which both sides step by one:
    ``suspect 0–5 ← reference 0–5, 6–11 ← 2–7``."""
    runs: list[list[tuple[int, int]]] = []
    for i, j in sorted((int(a), int(b)) for a, b in mapping):
        if runs and (i, j) == (runs[-1][-1][0] + 1, runs[-1][-1][1] + 1):
            runs[-1].append((i, j))
        else:
            runs.append([(i, j)])
    if not runs:
        return "no layer map"

    def span(a: int, b: int) -> str:
        return str(a) if a == b else f"{a}\u2013{b}"

    parts = [f"{span(r[0][0], r[-1][0])} \u2190 {span(r[0][1], r[-1][1])}" for r in runs]
    first, rest = parts[0].split(" \u2190 ")
    return ", ".join([f"suspect {first} \u2190 reference {rest}", *parts[1:]])


NO_MAP = LayerMap("none", [])


def chance_bound(rows: int, cols: int, noise: float) -> float:
    """The similarity a best-of-(rows x cols) chance match stays below (about 3 sigma past the maximum)."""
    return max(MIN_SIMILARITY, (math.sqrt(2 * math.log(max(rows * cols, 2))) + 3) * noise)


def infer(values: np.ndarray, s_layers: list[int], r_layers: list[int], noise: float) -> LayerMap:
    """The layer map: a line ``j = a*i + b`` (or ``i = a*j + b``, a >= 1 integer) through the rows'
    confident best matches where one fits, else each suspect layer's own confident best match.

    ``noise`` is the standard deviation of one entry under "unrelated" (1/sqrt(n) for Pearson)."""
    if values.size == 0 or len(s_layers) < 2 or len(r_layers) < 2:
        return NO_MAP
    bound = chance_bound(len(s_layers), len(r_layers), noise)
    return _line(values, s_layers, r_layers, bound) or _free(values, s_layers, r_layers, bound)


def _enough(found: int, s_layers: list[int], r_layers: list[int]) -> bool:
    return found >= max(2, math.ceil(0.6 * min(len(s_layers), len(r_layers))))


def _free(values: np.ndarray, s_layers: list[int], r_layers: list[int], bound: float) -> LayerMap:
    """Every suspect layer whose best reference layer stands out from chance, taken as it is."""
    best = np.argmax(values, axis=1)
    mapping = [(s_layers[i], r_layers[j]) for i, j in enumerate(best) if values[i, j] >= bound]
    if not _enough(len(mapping), s_layers, r_layers):
        return NO_MAP
    found = LayerMap("reordered", mapping)
    return LayerMap("repeated", mapping) if found.repeats else found


def _line(values: np.ndarray, s_layers: list[int], r_layers: list[int], bound: float) -> LayerMap | None:
    best = np.argmax(values, axis=1)
    # Each reference layer is claimed once, by the strongest row (a dropped-layer parent's unused
    # layers must not be claimed by chance).
    by_target: dict[int, tuple[int, int]] = {}
    for i, j in enumerate(best):
        if values[i, j] >= bound and (j not in by_target or values[by_target[j]] < values[i, j]):
            by_target[j] = (i, j)
    pairs = sorted((s_layers[i], r_layers[j]) for i, j in by_target.values())
    if not _enough(len(pairs), s_layers, r_layers):
        return None
    forward, backward = _fit(pairs), _fit([(j, i) for i, j in pairs])
    if forward is None and backward is None:
        return None
    a, b = forward or backward
    if forward is not None:
        mapping = [(i, a * i + b) for i in s_layers if a * i + b in r_layers]
    else:
        mapping = [(i, (i - b) // a) for i in s_layers if (i - b) % a == 0 and (i - b) // a in r_layers]
    kind = "stride" if a > 1 else ("identity" if b == 0 else "offset")
    return LayerMap(kind, mapping)


def _fit(pairs: list[tuple[int, int]]) -> tuple[int, int] | None:
    """(a, b) with y = a*x + b for every pair, a a positive integer; None if no such line."""
    (x0, y0), (x1, y1) = pairs[0], pairs[1]
    if x1 == x0 or (y1 - y0) % (x1 - x0):
        return None
    a = (y1 - y0) // (x1 - x0)
    b = y0 - a * x0
    if a < 1 or any(y != a * x + b for x, y in pairs):
        return None
    return a, b
