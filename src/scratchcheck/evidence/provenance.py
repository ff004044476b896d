"""Provenance by layer: where in a component the evidence lies, and the shares summed from there.

Each layer of a component (and its embeddings, head and norms as groups) is tested on its own: the
coordinate tests of its tensors (size-weighted Stouffer) and its unit matchings, Cauchy-combined,
then Holm-adjusted across the component's groups. A group of a derived component is derived when
its own test passes ``ALPHA_LOCATE``; it is independent when its test could have seen a correlation
as strong as the component's typical one and did not; otherwise it is inconclusive. A group equal within conversion error is identical in a plain
copy (kind ``copied``: some tensors merely not comparable) and derived in a component changed otherwise
(rows cut, layers remapped). Groups of a
component that is not derived take the component's verdict: the component-level rules (spread,
power, blind spots) decide whether anything is derived, and the component's test speaks for all. Shares of the suspect's parameters are summed from the groups, never from the
component as a whole.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from ..results import SHARE_KEYS, ComparisonReport, ComponentComparison, ProvenanceGroup
from . import rules, stats, units
from .measured import MeasuredPair
from .testresults import coordinate_log_p
from .thresholds import ALPHA_LOCATE, ALPHA_SOME, IDENTICAL_SHARE, MAX_DETECTABLE_R


def group_of(m: MeasuredPair) -> tuple[str, int | None]:
    """The provenance group of a pair: its layer, else embeddings / head / norms / other."""
    if m.pair.layer is not None:
        return f"layer {m.pair.layer}", m.pair.layer
    role = m.pair.role
    if "embed" in role:
        return "embeddings", None
    if role.startswith("head."):
        return "head", None
    if role.startswith("norm."):
        return "norms", None
    return "other", None


def provenance(
    rows: Sequence[MeasuredPair],
    matchings: Sequence[units.Matching],
    component_verdict: str,
    total_params: int,
    kind: str | None = None,
) -> list[ProvenanceGroup]:
    """One record per group, in layer order (groups without a layer last)."""
    groups: dict[tuple[str, int | None], list[MeasuredPair]] = defaultdict(list)
    for m in rows:
        groups[group_of(m)].append(m)
    keys = sorted(groups, key=lambda k: (k[1] is None, k[1] if k[1] is not None else 0, k[0]))
    log_ps = [
        _group_log_p(groups[k], [x for x in matchings if k[1] is not None and x.layer == k[1]]) for k in keys
    ]
    adjusted = stats.holm(log_ps)
    typical = _typical_r(rows)
    out = []
    for key, log_p, adj in zip(keys, log_ps, adjusted, strict=True):
        members = groups[key]
        params = sum(m.numel for m in members)
        out.append(
            ProvenanceGroup(
                group=key[0],
                layers=[key[1]] if key[1] is not None else [],
                verdict=_group_verdict(members, log_p, adj, component_verdict, typical, len(keys), kind),
                params=params,
                share=params / total_params if total_params else 0.0,
                pearson=statistics.median(m.pearson for m in members),
                p_value=stats.p_of(adj) if math.isfinite(adj) else None,
                tensors=len(members),
            )
        )
    return out


def _group_log_p(members: Sequence[MeasuredPair], matchings: Sequence[units.Matching]) -> float:
    log_ps = [coordinate_log_p(members)]
    log_ps += [m.similarity.log_p for m in matchings] + [m.identity.log_p for m in matchings]
    return stats.cauchy_combine(log_ps)


def _typical_r(rows: Sequence[MeasuredPair]) -> float:
    """The median |r| of the tensors that are significant alone (the strength of the evidence)."""
    strong = [abs(m.pearson) for m in rows if m.test.log_p < math.log(ALPHA_SOME)]
    return statistics.median(strong) if strong else MAX_DETECTABLE_R


def _group_verdict(
    members: Sequence[MeasuredPair],
    log_p: float,
    adjusted: float,
    component_verdict: str,
    typical_r: float,
    family: int,
    kind: str | None,
) -> str:
    if component_verdict != "derived":
        return component_verdict  # the component's test speaks for all its groups
    if all(rules.within_conversion(m) for m in members):
        # Equal within conversion error: identical only in a plain copy of what could be compared;
        # in a component changed otherwise (rows cut, layers remapped) the group is derived.
        return "identical" if kind == "copied" else "derived"
    if rules.significant(adjusted, ALPHA_LOCATE):
        return "derived"
    if rules.significant(log_p, ALPHA_SOME):
        return "inconclusive"
    power = stats.detectable_r(
        [m.metrics.n for m in members],
        [m.metrics.null_inflation for m in members],
        ALPHA_LOCATE / max(family, 1),
    )
    return (
        "independent" if math.isfinite(power) and power < min(MAX_DETECTABLE_R, typical_r) else "inconclusive"
    )


def provenance_text(comp: ComponentComparison) -> str:
    """Runs of consecutive layers with one verdict, e.g. "layers 0-3 derived (r 0.9998), layers 4-7
    independent (r 0.01)", then the groups without a layer."""
    parts: list[str] = []
    layered = [g for g in comp.provenance if g.layers]
    run: list = []
    for g in layered + [None]:
        if run and (g is None or g.verdict != run[-1].verdict or g.layers[0] != run[-1].layers[0] + 1):
            first, last = run[0].layers[0], run[-1].layers[0]
            where = f"layer {first}" if first == last else f"layers {first}-{last}"
            r = statistics.median(x.pearson for x in run if x.pearson is not None)
            parts.append(f"{where} {run[0].verdict} (r {r:.4g})")
            run = []
        if g is not None:
            run.append(g)
    parts += [
        f"{g.group} {g.verdict} (r {g.pearson:.4g})"
        for g in comp.provenance
        if not g.layers and g.pearson is not None
    ]
    return ", ".join(parts)


def component_shares(comp: ComponentComparison, total_params: int, fixed_params: int = 0) -> dict[str, float]:
    """Share of the suspect model's parameters under each key, for one component (``fixed_params``:
    its parameters in tensors set aside as not learned)."""
    out = dict.fromkeys(SHARE_KEYS, 0.0)
    counted = 0
    for g in comp.provenance:
        out[g.verdict] += g.share
        counted += g.params
    out["fixed"] = fixed_params / total_params if total_params else 0.0
    rest = max(comp.params - counted - fixed_params, 0)
    out["not_compared"] += rest / total_params if total_params else 0.0
    return out


def share_by_verdict(components: Sequence[ComponentComparison], suspect_params: int) -> dict[str, float]:
    """The suspect's parameters by verdict, each counted once (components not compared included)."""
    out = dict.fromkeys(SHARE_KEYS, 0.0)
    for comp in components:
        for key, value in comp.shares.items():
            out[key] += value
    out["not_compared"] += max(0.0, 1.0 - sum(out.values()))
    # Sums of many float shares leave residues of 1e-16; a share below 1e-9 of a model is none.
    return {k: 0.0 if v < 1e-9 else min(v, 1.0) for k, v in out.items()}


def overall_verdict(shares: dict[str, float]) -> str:
    """``identical`` only when nearly all of the suspect's learned parameters are; ``derived`` when
    any part is derived or identical; then ``inconclusive``, ``independent``; ``not_comparable`` when nothing was compared."""
    learned = 1.0 - shares.get("fixed", 0.0)  # computed tables are neither copied nor original
    if learned > 0 and shares.get("identical", 0.0) >= IDENTICAL_SHARE * learned:
        return "identical"
    if shares.get("identical", 0.0) + shares.get("derived", 0.0) > 0:
        return "derived"
    for key in ("inconclusive", "independent"):
        if shares.get(key, 0.0) > 0:
            return key
    return "not_comparable"


def headline(report: ComparisonReport) -> str:
    """One line a reader can quote: what share of the suspect is what, and from which reference."""
    from ..report.fmt import model_name, share  # the same numbers and names as every report

    shares = report.share_by_verdict
    by_reference: dict[str, float] = defaultdict(float)
    for comp in report.components:
        by_reference[comp.reference] += comp.shares.get("identical", 0.0) + comp.shares.get("derived", 0.0)
    sources = [(ref, v) for ref, v in sorted(by_reference.items(), key=lambda x: -x[1]) if v > 0]
    rest = "; ".join(
        f"{share(shares[k])} {'fixed tables' if k == 'fixed' else k.replace('_', ' ')}"
        for k in ("independent", "inconclusive", "not_compared", "fixed")
        if shares.get(k, 0.0) > 0 and k != report.verdict
    )
    if report.verdict == "not_comparable":
        return "not comparable: no parameters could be compared"
    if report.verdict == "identical":
        text = f"identical: {share(shares['identical'])} of parameters identical to " + ", ".join(
            model_name(ref) for ref, _ in sources
        )
    elif report.verdict == "derived":
        whole = shares["identical"] + shares["derived"] >= IDENTICAL_SHARE * (1.0 - shares["fixed"])
        parts = [
            f"{share(v)}{' of parameters' if i == 0 else ''} from {model_name(ref)}"
            for i, (ref, v) in enumerate(sources)
        ]
        text = ("derived: " if whole else "partially derived: ") + ", ".join(parts)
        if shares["identical"] > 0:
            text += f" ({share(shares['identical'])} identical)"
    elif report.verdict == "independent":
        text = f"independent: {share(shares['independent'])} of parameters tested independent, none derived"
    else:
        text = f"inconclusive: {share(shares['inconclusive'])} of parameters not settled, none derived"
    return f"{text}; {rest}" if rest else text
