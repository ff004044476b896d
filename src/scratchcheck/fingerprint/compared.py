"""What changes when a comparison runs on fingerprints: the same kept positions on both sides, and a
statement of the power the sampling costs."""

from __future__ import annotations

import math
import statistics
from typing import Any

from ..errors import UsageError
from ..io.base import Checkpoint
from .format import FingerprintCheckpoint
from .sampling import Plan

Z_DERIVED = 4.753  # one-sided normal quantile at the derived threshold, p = 1e-6


def sampled_sides(opened: list[Checkpoint]) -> dict[str, str] | None:
    """With a fingerprint on any side, every model in ``opened`` is replaced by its fingerprint made in
    memory with the same plan, so both sides of each pair hold the same kept positions. Returns
    ``{path: "fingerprint" | "model, sampled in memory"}``, or None when no side is a fingerprint."""
    from . import sampled_copy

    plans = {Plan.from_dict(c.sampling) for c in opened if isinstance(c, FingerprintCheckpoint)}
    if not plans:
        return None
    if len(plans) > 1:
        raise UsageError(
            None, "the fingerprints were made with different sampling plans and cannot be compared"
        )
    [plan] = plans
    sides = {}
    for i, checkpoint in enumerate(opened):
        if isinstance(checkpoint, FingerprintCheckpoint):
            sides[str(checkpoint.path)] = "fingerprint"
        else:
            opened[i] = sampled_copy(checkpoint, plan)
            sides[str(checkpoint.path)] = "model, sampled in memory"
    return sides


def sampling_statement(sides: dict[str, str], suspect: Checkpoint, records: list) -> dict[str, Any]:
    """The report's ``sampled`` record: what was kept and the smallest correlation still detectable."""
    kept = [(math.prod(i.shape), i.numel) for i in suspect.weights() if math.prod(i.shape) < i.numel]
    compared = [r.numel for r in records if r.learned and r.pearson is not None]
    k_median = statistics.median(k for k, _ in kept) if kept else None
    n_median = statistics.median(n for _, n in kept) if kept else None
    return {
        "sides": sides,
        "tensors_sampled": len(kept),
        "tensors_whole": len(suspect.weights()) - len(kept),
        "median_kept": k_median,
        "median_elements": n_median,
        "elements_compared": sum(compared),
        # One tensor alone, and all compared tensors together at a common r (Stouffer).
        "detectable_r_per_tensor": Z_DERIVED / math.sqrt(k_median) if k_median else None,
        "detectable_r_combined": Z_DERIVED / math.sqrt(sum(compared)) if compared else None,
        "summary": _summary(len(kept), k_median, n_median),
    }


def _summary(sampled: int, k: float | None, n: float | None) -> str:
    if not sampled or not k or not n:
        return "compared on fingerprints; every tensor was small enough to be kept whole"
    return (
        f"compared on fingerprints: {sampled} large tensors sampled, median {k:,.0f} of {n:,.0f} elements "
        f"per tensor; detectable |r| >= {Z_DERIVED / math.sqrt(k):.3f} per tensor at p = 1e-6"
    )
