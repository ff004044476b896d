"""Is the evidence spread over the component, or does it rest on a handful of tensors?

Two bit-identical fixed tensors (0.06% of a model's parameters) can drive a combined p to 1e-300.
A component is called derived only if (a) the combined test still passes the derived threshold with
the strongest few elements of each test family left out (tensors of the coordinate family, layers of
each unit-matching family: the strongest tenth, at least three, always keeping one), and (b) the
tensors and matched layers that are significant on their own hold at least ``SPREAD_MIN_SHARE`` of the
compared parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from . import stats, units
from .invariants import LayerGram
from .measured import MeasuredPair
from .testresults import coordinate_log_p
from .thresholds import ALPHA_SOME, SPREAD_LEAVE_OUT, SPREAD_MIN_SHARE


@dataclass(frozen=True)
class Spread:
    log_p: float  # the combined test without the strongest elements, unadjusted
    left_out: list[MeasuredPair]
    left_out_layers: list[units.Matching]
    share: float  # of the compared parameters held by elements significant on their own
    carriers: list[MeasuredPair]  # tensors significant on their own

    def passed(self, holm_shift: float, alpha: float) -> bool:
        """Still significant once left-out elements are gone (adjusted as the full test was), and
        carried by enough of the parameters."""
        rest_ok = math.isfinite(self.log_p) and self.log_p + holm_shift < math.log(alpha)
        return rest_ok and self.share >= SPREAD_MIN_SHARE


def leave_out_count(n: int) -> int:
    """How many of a family's ``n`` strongest elements are left out."""
    if n < 2:
        return 0
    return min(n - 1, max(3, math.ceil(SPREAD_LEAVE_OUT * n)))


def spread(
    rows: Sequence[MeasuredPair],
    matchings: Sequence[units.Matching],
    layer_log_ps: Sequence[float],
    grams: Sequence[LayerGram] = (),
) -> Spread:
    ranked = sorted(rows, key=lambda m: m.test.log_p)
    dropped = ranked[: leave_out_count(len(ranked))]
    rest = ranked[len(dropped) :]
    log_ps = [coordinate_log_p(rest)] if rest else []
    log_ps += list(layer_log_ps)
    dropped_layers: list[units.Matching] = []
    for group in sorted({m.group for m in matchings}):
        ms = sorted((m for m in matchings if m.group == group), key=lambda m: m.similarity.log_p)
        k = leave_out_count(len(ms))
        dropped_layers += ms[:k]
        log_ps.append(stats.cauchy_combine([m.similarity.log_p for m in ms[k:]]))
        log_ps.append(stats.cauchy_combine([m.identity.log_p for m in ms[k:]]))
    # Unit-Gram layers (a rotation not undone) are left out and carry their layer as matched layers do.
    ranked_grams = sorted(grams, key=lambda g: g.evidence.log_p)
    if ranked_grams:
        log_ps.append(
            stats.cauchy_combine([g.evidence.log_p for g in ranked_grams[leave_out_count(len(grams)) :]])
        )
    log_p = stats.cauchy_combine(log_ps) if log_ps else float("nan")
    carriers = [m for m in rows if m.test.log_p < math.log(ALPHA_SOME)]
    matched_layers = {
        m.layer
        for m in matchings
        if math.isfinite(m.similarity.log_p) and m.similarity.log_p < math.log(ALPHA_SOME)
    } | {g.layer for g in grams if g.evidence.log_p < math.log(ALPHA_SOME)}
    carried = {id(m) for m in carriers} | {id(m) for m in rows if m.pair.layer in matched_layers}
    compared = sum(m.numel for m in rows)
    share = sum(m.numel for m in rows if id(m) in carried) / compared if compared else 0.0
    return Spread(log_p, dropped, dropped_layers, share, carriers)
