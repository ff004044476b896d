"""From measured pairs to a verdict per component (stand-in rules until calibrated tests land)."""

from __future__ import annotations

import statistics

from .align import Alignment
from .arch import ModelLayout
from .metrics import PairMetrics
from .results import ComponentComparison, TensorComparison, TestResult
from .stats import fisher, shuffle_p_value


def tensor_record(pair, metrics: PairMetrics | None, reference: str) -> TensorComparison:
    p = shuffle_p_value(metrics.pearson, metrics.n) if metrics else None
    return TensorComparison(
        suspect=pair.suspect.label or pair.suspect.name,
        reference=pair.reference.label or pair.reference.name,
        reference_model=reference,
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
        cosine=metrics.cosine if metrics else None,
        pearson=metrics.pearson if metrics else None,
        rel_l2=metrics.rel_l2 if metrics else None,
        max_abs_diff=metrics.max_abs_diff if metrics else None,
        frac_equal=metrics.frac_equal if metrics else None,
        bit_identical=metrics.bit_identical if metrics else None,
        spearman=metrics.spearman if metrics else None,
        p_value=p,
        delta_rel_scale=metrics.rel_l2 if metrics else None,
        delta_corr=metrics.delta_corr if metrics else None,
        delta_kurtosis=metrics.delta_kurtosis if metrics else None,
        raw_cosine_uninformative=bool(metrics and metrics.cosine_null > 0.5),
        transform=pair.transform,
    )


def assess(
    suspect: ModelLayout,
    reference: ModelLayout,
    alignment: Alignment,
    records: list[TensorComparison],
    reference_name: str,
) -> list[ComponentComparison]:
    total = sum(c.params for c in suspect.components) or 1
    out = []
    for comp in suspect.components:
        mine = [
            r for r in records if r.suspect_component == comp.name and r.learned and r.pearson is not None
        ]
        compared = sum(r.numel for r in mine)
        p = fisher([r.p_value for r in mine if r.p_value is not None]) if mine else None
        median_r = statistics.median(r.pearson for r in mine) if mine else None
        if not mine:
            verdict = "not_comparable"
        elif all(r.bit_identical for r in mine):
            verdict = "identical"
        elif p is not None and p < 1e-6 and median_r is not None and median_r > 0.1:
            verdict = "derived"
        else:
            verdict = "independent"
        out.append(
            ComponentComparison(
                suspect_component=comp.name,
                component_kind=comp.kind,
                reference=reference_name,
                reference_component=comp.name if mine else None,
                verdict=verdict,
                kind=None,
                p_value=p,
                params=comp.params,
                share=comp.params / total,
                coverage=compared / comp.params if comp.params else 0.0,
                pearson=median_r,
                params_compared=compared,
                tensors_compared=len(mine),
                tests=[
                    TestResult(
                        "fisher", 0.0, p, "per-tensor coordinate-shuffle p-values, Fisher-combined", len(mine)
                    )
                ],
            )
        )
    return out
