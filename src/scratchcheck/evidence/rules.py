"""The verdict rules: identity within conversion error, significance, spread, power, and the kind.

Each rule reads typed results (``MeasuredPair``, ``Matching``) and the thresholds of
``thresholds.py``; docs/methods.md states them in words.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ..arch import ModelLayout
from ..errors import NotFoundError
from ..results import LayerMatrix, NotComparable
from . import units
from .measured import MeasuredPair
from .thresholds import (
    ALPHA_DERIVED,
    ALPHA_SOME,
    IDENTICAL_PEARSON,
    IDENTICAL_REL_L2,
    MAX_DETECTABLE_R,
    NOISE_DELTA_CORR,
    NOISE_KURTOSIS,
    NOISE_SCALE_CV,
    PERMUTED_IDENTITY,
)

GRID_TRACES = ("float grid", "integer grid")  # the traces of a quantisation (``metrics``)


def verdict(
    *,
    compared: bool,
    identical: bool,
    log_p: float,
    power: float | None,
    spread_ok: bool,
    blind_spots: Sequence[str],
) -> str:
    """The component verdict from its (Holm-adjusted) combined log p and the checks around it."""
    if not compared and not math.isfinite(log_p):
        return "not_comparable"
    if identical:
        return "identical"
    if math.isfinite(log_p) and log_p < math.log(ALPHA_DERIVED):
        return "derived" if spread_ok else "inconclusive"
    if not math.isfinite(log_p) or log_p < math.log(ALPHA_SOME):
        return "inconclusive"
    if power is None or not math.isfinite(power) or power > MAX_DETECTABLE_R or blind_spots:
        return "inconclusive"
    return "independent"


def identical(rows: Sequence[MeasuredPair], exact_layers: bool, complete: bool) -> bool:
    """Every compared tensor equal within conversion error, changed uniformly, at its own layer, and
    nothing of the reference component left out."""
    return (
        bool(rows)
        and all(within_conversion(m) for m in rows)
        and uniformly_changed(rows)
        and exact_layers
        and complete
    )


def uniformly_changed(rows: Sequence[MeasuredPair]) -> bool:
    """A conversion touches every matrix or none; some matrices bitwise equal and others changed
    is an edit (a merged LoRA, a partial fine-tune), however small."""
    matrices = [m.metrics.bit_identical for m in rows if m.is_matrix]
    return all(matrices) or not any(matrices)


def within_conversion(m: MeasuredPair) -> bool:
    """Bitwise equal, equal in value, or off by what a change of precision leaves: tiny, with a
    trace of rounding (``metrics.conversion_trace``: one side on a float or integer grid the other
    is not on, or errors growing with the value). A change as small but without such a trace
    (Gaussian noise, a few Adam steps, a fine-tune of a bf16 model saved in bf16) is an edit."""
    x = m.metrics
    if x.bit_identical or x.max_abs_diff == 0:  # the same values in another dtype
        return True
    return conversion_sized(x.pearson, x.rel_l2) and x.conversion_trace is not None


def conversion_sized(pearson: float | None, rel_l2: float | None) -> bool:
    """Close enough for a change of precision: Pearson >= 0.99 and within 1% in L2."""
    return (
        pearson is not None
        and rel_l2 is not None
        and pearson >= IDENTICAL_PEARSON
        and rel_l2 <= IDENTICAL_REL_L2
    )


def significant(log_p: float, alpha: float) -> bool:
    return math.isfinite(log_p) and log_p < math.log(alpha)


def kind(
    rows: Sequence[MeasuredPair],
    matchings: Sequence[units.Matching],
    matrices: Sequence[LayerMatrix],
    not_comparable: Sequence[NotComparable],
    suspect: ModelLayout,
    reference: ModelLayout,
) -> str | None:
    """The kind of derivation the traces point to (a description, not a test)."""
    if not rows:
        return None
    found = [m for m in matchings if significant(m.similarity.log_p, ALPHA_SOME)]
    if found and statistics.mean(m.identity_fraction for m in found) < PERMUTED_IDENTITY:
        return "permuted"
    if any(m.layer_map in ("stride", "offset") for m in matrices) or any(
        p.pair.layer is not None
        and p.pair.reference_layer is not None
        and p.pair.layer != p.pair.reference_layer
        for p in rows
    ):
        return "layer-dropped"
    if _pruned(not_comparable, suspect, reference):
        return "pruned"
    if all(m.metrics.bit_identical for m in rows):
        return "copied"
    mats = [m.metrics for m in rows if m.is_matrix]
    kurt = [x.delta_kurtosis for x in mats if math.isfinite(x.delta_kurtosis)]
    if not kurt:
        return "fine-tuned"
    median_kurt = statistics.median(kurt)
    gridded = [x.conversion_trace in GRID_TRACES for x in mats]
    if min(x.pearson for x in mats) >= IDENTICAL_PEARSON and sum(gridded) > len(gridded) / 2:
        return "quantised"  # most matrices on a grid their reference is not on
    scales = [x.rel_l2 for x in mats if x.rel_l2]
    corr = [abs(x.delta_corr) for x in mats if math.isfinite(x.delta_corr)]
    if (
        NOISE_KURTOSIS[0] <= median_kurt <= NOISE_KURTOSIS[1]
        and corr
        and statistics.median(corr) < NOISE_DELTA_CORR
        and len(scales) > 1
        and statistics.pstdev(scales) < NOISE_SCALE_CV * statistics.mean(scales)
    ):
        return "noised"  # Gaussian, uncorrelated with the weights, the same relative size everywhere
    return "fine-tuned"


def _pruned(not_comparable: Sequence[NotComparable], suspect: ModelLayout, reference: ModelLayout) -> bool:
    """Some pair differs in one axis only, the suspect's smaller: rows or units were cut away."""
    for n in not_comparable:
        try:
            a, b = suspect.checkpoint.info(n.suspect).shape, reference.checkpoint.info(n.reference).shape
        except (KeyError, AttributeError, ValueError, NotFoundError):  # a view's label, not a tensor
            continue
        if (
            len(a) == len(b)
            and sum(x != y for x, y in zip(a, b, strict=True)) == 1
            and all(x <= y for x, y in zip(a, b, strict=True))
        ):
            return True
    return False
