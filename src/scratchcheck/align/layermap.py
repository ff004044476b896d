"""Which suspect layer corresponds to which reference layer, read from the i x j similarity matrix.

A derived model shows a diagonal (identity), a shifted one (offset: layers added or removed at one
end) or a sub-sampled one (stride: every k-th layer kept); an independent model shows nothing. The
off-diagonal entries are the null from the same pair of models, so a row's best match only counts
when it stands out from chance for that many comparisons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SIMILARITY = 0.2  # below this a "best" layer is never trusted, whatever the sample size


@dataclass(frozen=True)
class LayerMap:
    kind: str  # identity | offset | stride | none
    mapping: list[tuple[int, int]]  # (suspect layer, reference layer)

    def target(self, layer: int) -> int | None:
        """The reference layer for ``layer`` under this map (None if the map has no entry)."""
        return dict(self.mapping).get(layer)


NO_MAP = LayerMap("none", [])


def chance_bound(rows: int, cols: int, noise: float) -> float:
    """The similarity a best-of-(rows x cols) chance match stays below (about 3 sigma past the maximum)."""
    return max(MIN_SIMILARITY, (math.sqrt(2 * math.log(max(rows * cols, 2))) + 3) * noise)


def infer(values: np.ndarray, s_layers: list[int], r_layers: list[int], noise: float) -> LayerMap:
    """Fit ``j = a*i + b`` (or ``i = a*j + b``), a >= 1 integer, to the rows' confident best matches.

    ``noise`` is the standard deviation of one entry under "unrelated" (1/sqrt(n) for Pearson)."""
    if values.size == 0 or len(s_layers) < 2 or len(r_layers) < 2:
        return NO_MAP
    bound = chance_bound(len(s_layers), len(r_layers), noise)
    best = np.argmax(values, axis=1)
    # Each reference layer is claimed once, by the strongest row (a dropped-layer parent's unused
    # layers must not be claimed by chance).
    by_target: dict[int, tuple[int, int]] = {}
    for i, j in enumerate(best):
        if values[i, j] >= bound and (j not in by_target or values[by_target[j]] < values[i, j]):
            by_target[j] = (i, j)
    pairs = sorted((s_layers[i], r_layers[j]) for i, j in by_target.values())
    if len(pairs) < max(2, math.ceil(0.6 * min(len(s_layers), len(r_layers)))):
        return NO_MAP
    forward, backward = _fit(pairs), _fit([(j, i) for i, j in pairs])
    if forward is None and backward is None:
        return NO_MAP
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
