"""Aggregates the reports show beside the raw records: per-layer drift, per-role rows, verdict shares."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from ..results import ComparisonReport, ComponentComparison, TensorComparison


def tensors_of(report: ComparisonReport, comp: ComponentComparison) -> list[TensorComparison]:
    """The tensor pairs behind one component verdict (its suspect component, against its reference)."""
    return [
        t
        for t in report.tensors
        if t.suspect_component == comp.suspect_component and t.reference_model == comp.reference
    ]


def measured(tensors: Iterable[TensorComparison]) -> list[TensorComparison]:
    """Learned pairs with a Pearson value: the ones that are evidence."""
    return [t for t in tensors if t.learned and t.pearson is not None]


@dataclass(frozen=True)
class LayerStat:
    layer: int
    tensors: int
    pearson_median: float
    pearson_min: float
    pearson_max: float
    rel_l2_median: float | None


def layer_profile(tensors: Iterable[TensorComparison]) -> list[LayerStat]:
    """The drift profile: per suspect layer, the median (and range) of Pearson and relative L2."""
    by_layer: dict[int, list[TensorComparison]] = {}
    for t in measured(tensors):
        if t.layer is not None:
            by_layer.setdefault(t.layer, []).append(t)
    rows = []
    for layer in sorted(by_layer):
        group = by_layer[layer]
        rs = [t.pearson for t in group]
        l2 = [t.rel_l2 for t in group if t.rel_l2 is not None]
        rows.append(
            LayerStat(
                layer,
                len(group),
                statistics.median(rs),
                min(rs),
                max(rs),
                statistics.median(l2) if l2 else None,
            )
        )
    return rows


@dataclass(frozen=True)
class RoleStat:
    component: str
    role: str
    tensors: int
    params: int
    pearson_median: float | None
    pearson_min: float | None
    rel_l2_median: float | None
    bit_identical: int
    uninformative_cosine: int
    excluded: int


def role_rows(tensors: Iterable[TensorComparison]) -> list[RoleStat]:
    """One row per (component, role): how a family of tensors (e.g. every q_proj) compares."""
    groups: dict[tuple[str, str], list[TensorComparison]] = {}
    for t in tensors:
        groups.setdefault((t.suspect_component, t.role), []).append(t)
    rows = []
    for (component, role), group in groups.items():
        good = measured(group)
        rs = [t.pearson for t in good]
        l2 = [t.rel_l2 for t in good if t.rel_l2 is not None]
        rows.append(
            RoleStat(
                component,
                role,
                len(group),
                sum(t.numel for t in group),
                statistics.median(rs) if rs else None,
                min(rs) if rs else None,
                statistics.median(l2) if l2 else None,
                sum(1 for t in good if t.bit_identical),
                sum(1 for t in good if t.raw_cosine_uninformative),
                sum(1 for t in group if not t.learned),
            )
        )
    return rows


def verdict_shares(report: ComparisonReport) -> dict[str, float]:
    """Share of the suspect's parameters under each verdict: from the per-layer groups, or (reports
    written before schema /1.1) from whole components."""
    if report.share_by_verdict:
        return {k: v for k, v in report.share_by_verdict.items() if v > 0}
    out: dict[str, float] = {}
    for comp in report.components:
        out[comp.verdict] = out.get(comp.verdict, 0.0) + (comp.share or 0.0)
    return out


def table_tensors(tensors: list[TensorComparison], cap: int) -> tuple[list[TensorComparison], int]:
    """At most ``cap`` rows for a per-tensor table: all of them, or the least similar learned pairs
    first (the ones a reader should check), then excluded ones. Returns (rows, rows left out)."""
    if len(tensors) <= cap:
        return tensors, 0

    def key(t: TensorComparison) -> tuple[int, float]:
        return (0, t.pearson) if t.learned and t.pearson is not None else (1, 0.0)

    return sorted(tensors, key=key)[:cap], len(tensors) - cap
