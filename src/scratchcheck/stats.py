"""Tests against known nulls (stand-in: the analytic coordinate-shuffle test and Fisher's method)."""

from __future__ import annotations

import math


def shuffle_p_value(r: float, n: int) -> float:
    """One-sided p of Pearson ``r`` under 'no element-wise correspondence': r*sqrt(n-1) ~ N(0, 1)."""
    if n < 3 or not math.isfinite(r):
        return float("nan")
    return 0.5 * math.erfc(r * math.sqrt(n - 1) / math.sqrt(2))


def fisher(p_values: list[float]) -> float:
    """Fisher's combination: X2 = -2 sum log p ~ chi2(2k) when the p are independent uniforms."""
    from scipy.stats import chi2

    ps = [max(p, 1e-300) for p in p_values if math.isfinite(p)]
    if not ps:
        return float("nan")
    return float(chi2.sf(-2.0 * sum(math.log(p) for p in ps), 2 * len(ps)))
