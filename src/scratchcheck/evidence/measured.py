"""One aligned pair, measured and tested: the typed result carried from measurement to verdict.

``measure`` streams a learned pair through ``metrics.pair_metrics`` and runs its coordinate test;
the result keeps the numbers and the test (not the value samples, which would hold 1 MiB per pair
on a 20,000-tensor model). The JSON record (``TensorComparison``) is built from it once, at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..align import TensorPair
from ..results import TensorComparison
from . import stats
from .metrics import PairMetrics, pair_metrics
from .thresholds import UNINFORMATIVE_COSINE


@dataclass(frozen=True)
class MeasuredPair:
    """A tensor pair with its metrics (None when it is not learned) and its coordinate test."""

    pair: TensorPair
    reference_model: str
    metrics: PairMetrics | None = None
    test: stats.Evidence | None = None
    # Vectors only: both sides centred and scaled to unit length, for the null correlation of
    # their statistics with other vectors of the same basis (norm gains of different layers).
    directions: tuple[np.ndarray, np.ndarray] | None = None
    weight: float = 0.0  # Stouffer weight: sqrt((n - 1) / inflation), fixed by size alone

    @property
    def tested(self) -> bool:
        """A learned pair whose coordinate test has a finite p-value: evidence."""
        return self.test is not None and math.isfinite(self.test.log_p)

    @property
    def pearson(self) -> float | None:
        return self.metrics.pearson if self.metrics else None

    @property
    def numel(self) -> int:
        return self.pair.suspect.numel

    @property
    def label(self) -> str:
        return self.pair.suspect.label or self.pair.suspect.name

    @property
    def is_matrix(self) -> bool:
        return len(self.pair.suspect.shape) >= 2

    def record(self) -> TensorComparison:
        """The pair as the reports and the JSON show it."""
        pair, m = self.pair, self.metrics
        return TensorComparison(
            suspect=self.label,
            reference=pair.reference.label or pair.reference.name,
            reference_model=self.reference_model,
            suspect_component=pair.suspect_component,
            reference_component=pair.reference_component,
            role=pair.role,
            layer=pair.layer,
            reference_layer=pair.reference_layer,
            shape=list(pair.suspect.shape),
            numel=pair.suspect.numel,
            paired_by=pair.paired_by,
            learned=pair.learned,
            excluded_reason=pair.excluded_reason,
            cosine=m.cosine if m else None,
            pearson=m.pearson if m else None,
            rel_l2=m.rel_l2 if m else None,
            max_abs_diff=m.max_abs_diff if m else None,
            frac_equal=m.frac_equal if m else None,
            bit_identical=m.bit_identical if m else None,
            spearman=m.spearman if m else None,
            p_value=stats.p_of(self.test.log_p) if self.test else None,
            delta_rel_scale=m.rel_l2 if m else None,
            delta_corr=m.delta_corr if m else None,
            delta_kurtosis=m.delta_kurtosis if m else None,
            conversion_trace=m.conversion_trace if m else None,
            # Raw cosine says nothing when the no-correspondence value alone is already high.
            raw_cosine_uninformative=bool(m and m.cosine_null > UNINFORMATIVE_COSINE),
            transform=pair.transform,
        )


def measure(pair: TensorPair, reference_model: str) -> MeasuredPair:
    """Stream one pair and test it against 'no element-wise correspondence'."""
    if not pair.learned:
        return MeasuredPair(pair, reference_model)
    m = pair_metrics(pair.suspect.load(), pair.reference.load())
    return tested(pair, reference_model, m)


def tested(pair: TensorPair, reference_model: str, m: PairMetrics) -> MeasuredPair:
    """The coordinate test of measured metrics (the value samples are dropped afterwards)."""
    vector = m.ndim < 2
    test = stats.coordinate_test(m.pearson, m.n, m.null_inflation, vector=vector)
    whole = m.sample_a.size == m.n  # the sample is the whole vector, in order
    empty = np.zeros(0, np.float32)
    return MeasuredPair(
        pair,
        reference_model,
        replace(m, sample_a=empty, sample_b=empty),
        test,
        directions=(_direction(m.sample_a), _direction(m.sample_b)) if vector and whole else None,
        weight=math.sqrt(max(m.n - 1, 0) / max(m.null_inflation, 1.0)),
    )


def _direction(x: np.ndarray) -> np.ndarray:
    centred = np.asarray(x, dtype=np.float64) - float(np.mean(x))
    norm = float(np.linalg.norm(centred))
    return (centred / norm).astype(np.float32) if norm > 0 else np.zeros(centred.shape, np.float32)
