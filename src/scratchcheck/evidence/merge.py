"""Merges: a suspect significantly related to two references, as a mixture of the two.

A linear merge (model soup, task arithmetic with two parents, SLERP at small angles) gives tensors
``s ~ a r1 + b r2``. Per tensor, least squares on the centred values (a strided sample of at most
``SAMPLE`` values) gives (a, b); the weights reported are the means over tensors with a Student
confidence interval across tensors (values within one tensor are not independent, tensors are the
replicates), and per layer where layers differ from the whole by more than the interval.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from ..align import Alignment, TensorPair
from ..results import ComponentComparison, TestResult

SAMPLE = 65536  # values per tensor in the fit
LEVEL = 0.95
COLLINEAR = 0.9  # parents correlated beyond this (one is a fine-tune of the other) are not mixed


@dataclass(frozen=True)
class MergeEstimate:
    """Mixing weights of two parents, with a confidence interval and per-layer values."""

    parents: tuple[str, str]
    weights: tuple[float, float]
    intervals: tuple[tuple[float, float], tuple[float, float]]
    tensors: int
    per_layer: dict[int, tuple[float, float]] = field(default_factory=dict)
    residual: float = float("nan")  # median relative L2 of what the mixture leaves unexplained

    def describe(self) -> str:
        (a, b), ((a0, a1), (b0, b1)) = self.weights, self.intervals
        text = (
            f"{a:.3f} x {self.parents[0]} [{a0:.3f}, {a1:.3f}] + {b:.3f} x {self.parents[1]} "
            f"[{b0:.3f}, {b1:.3f}] ({LEVEL:.0%} intervals over {self.tensors} tensors)"
        )
        if self.per_layer:
            text += "; by layer: " + ", ".join(
                f"{k}: {x:.2f}/{y:.2f}" for k, (x, y) in sorted(self.per_layer.items())
            )
        return text


def fit(suspect: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[float, float, float] | None:
    """(a, b, relative residual) of ``suspect ~ a first + b second`` on centred values; None where
    the parents are near-copies of each other (siblings of one base), which no fit can tell apart."""
    step = max(1, suspect.size // SAMPLE)
    y, x1, x2 = (np.asarray(t, dtype=np.float64).ravel()[::step] for t in (suspect, first, second))
    design = np.stack([x1 - x1.mean(), x2 - x2.mean()], axis=1)
    if abs(np.corrcoef(design.T)[0, 1]) > COLLINEAR:
        return None
    target = y - y.mean()
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    rest = float(np.linalg.norm(target - design @ coef) / max(np.linalg.norm(target), 1e-30))
    return float(coef[0]), float(coef[1]), rest


def estimate(pairs: list[tuple[TensorPair, TensorPair]], parents: tuple[str, str]) -> MergeEstimate | None:
    """The mixture over matrix pairs that share their suspect tensor: (pair with parent 1, with parent 2)."""
    from scipy.stats import t

    fits = []
    for p1, p2 in pairs:
        if len(p1.suspect.shape) < 2 or p1.reference.shape != p2.reference.shape:
            continue
        found = fit(p1.suspect.load(), p1.reference.load(), p2.reference.load())
        if found is not None:
            fits.append((p1.layer, *found))
    if len(fits) < 3:
        return None
    a = np.array([f[1] for f in fits])
    b = np.array([f[2] for f in fits])
    q = float(t.ppf(0.5 + LEVEL / 2, len(fits) - 1))

    def interval(x: np.ndarray) -> tuple[float, float]:
        half = q * float(x.std(ddof=1)) / math.sqrt(x.size)
        return float(x.mean()) - half, float(x.mean()) + half

    intervals = (interval(a), interval(b))
    by_layer: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for layer, x, y, _ in fits:
        if layer is not None:
            by_layer[layer].append((x, y))
    layer_means = {
        k: (statistics.mean(v[0] for v in vs), statistics.mean(v[1] for v in vs))
        for k, vs in by_layer.items()
    }
    differ = any(not (intervals[0][0] <= x <= intervals[0][1]) for x, _ in layer_means.values())
    return MergeEstimate(
        parents,
        (float(a.mean()), float(b.mean())),
        intervals,
        len(fits),
        per_layer=layer_means if differ else {},
        residual=statistics.median(f[3] for f in fits),
    )


def annotate(
    candidates: list[ComponentComparison], alignments: dict[str, Alignment]
) -> list[ComponentComparison]:
    """Components derived from two references get kind ``merged`` and the mixture as a record."""
    out = []
    for c in candidates:
        parents = [
            o.reference
            for o in candidates
            if o.suspect_component == c.suspect_component and o.verdict in ("derived", "identical")
        ]
        found = None
        if c.verdict == "derived" and len(parents) == 2:
            first, second = parents
            found = estimate(
                _shared(alignments[first], alignments[second], c.suspect_component), (first, second)
            )
        if found is None or not _both_weigh(found):
            out.append(c)
            continue
        record = TestResult(
            "merge weights",
            statistic=found.weights[0],
            p_value=None,
            null="not a test: least squares of the suspect's centred tensors on the two parents', "
            f"{LEVEL:.0%} Student interval across tensors",
            n=found.tensors,
            detail={"mixture": found.describe(), "weights": list(found.weights), "residual": found.residual},
        )
        out.append(replace(c, kind="merged", tests=[*c.tests, record]))
    return out


def _both_weigh(found: MergeEstimate) -> bool:
    """Both parents carry weight: each interval lies above zero."""
    return all(lo > 0 for lo, _ in found.intervals)


def _shared(first: Alignment, second: Alignment, component: str) -> list[tuple[TensorPair, TensorPair]]:
    by_suspect = {p.suspect.key: p for p in second.pairs if p.learned and p.suspect_component == component}
    return [
        (p, by_suspect[p.suspect.key])
        for p in first.pairs
        if p.learned and p.suspect_component == component and p.suspect.key in by_suspect
    ]
