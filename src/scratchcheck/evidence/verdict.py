"""From measured pairs to a verdict per component: tests, their combination, rules, words.

Per suspect component and reference, ``assess`` runs three kinds of test, each with a known null:
the coordinate test of every learned tensor pair, the diagonal of each i x j layer matrix, and unit
matching under the network's symmetries (``units.match``). Coordinate tests are summed
(size-weighted Stouffer, with the null correlation of vectors that share a basis); the families are
then joined by the Cauchy method, which stays valid when tests are dependent (they read the same two
models). ``finalize`` controls the family-wise error across all components and references (Holm),
applies the rules (``rules``, ``spread``, ``blindspots``), locates the evidence layer by layer
(``provenance``), names the kind of derivation, and writes the words a reader must see.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..align import Alignment
from ..arch import ModelLayout
from ..results import ComponentComparison, TestResult
from . import invariants, keptunits, rules, stats, testresults, units
from .blindspots import blind_spots, model_signs
from .layerpaths import layer_map_result
from .measured import MeasuredPair
from .provenance import component_shares, provenance, provenance_text
from .spread import Spread, spread
from .structure import (
    disguise_result,
    pooled_heads_result,
    rotation_not_fitted,
    seen_through,
    structural_kind,
)
from .thresholds import (
    ALPHA_DERIVED,
    LOW_COVERAGE,
    MAX_DETECTABLE_R,
    MIN_LAYERS,
    TRAP_COSINE,
    TRAP_PEARSON,
    UNINFORMATIVE_COSINE,
    WEAK_SIGNAL_R,
)


@dataclass(frozen=True)
class Assessment:
    """One component against one reference, before multiple-testing control."""

    draft: ComponentComparison
    rows: list[MeasuredPair]
    matchings: list[units.Matching]
    log_p: float  # combined, unadjusted
    identical: bool
    spread: Spread | None
    extra_tests: int = 0
    corr_weight: float = 1.0
    kind: str | None = None
    blind_spots: list[str] = field(default_factory=list)
    fixed_params: int = 0  # in tensors set aside as not learned (computed tables, constants)
    fixed_params: int = 0  # in tensors set aside as not learned (computed tables, constants)


def assess(
    suspect: ModelLayout,
    reference: ModelLayout,
    alignment: Alignment,
    measured: Sequence[MeasuredPair],
    reference_name: str,
    chosen: set[str] | None = None,
) -> list[Assessment]:
    """Every test for every (chosen) suspect component against this reference (before Holm)."""
    total = sum(c.params for c in suspect.components) or 1
    signs = model_signs(suspect, reference)  # read once, not once per component
    out = []
    for comp in suspect.components:
        if chosen is not None and comp.name not in chosen:
            continue
        rows = [m for m in measured if m.pair.suspect_component == comp.name and m.tested]
        pairs = [p for p in alignment.pairs if p.learned and p.suspect_component == comp.name]
        not_comparable = [n for n in alignment.not_comparable if suspect.component_of(n.suspect) == comp.name]
        tests: list[TestResult] = []
        log_ps: list[float] = []
        if rows:
            tests.append(testresults.coordinate_result(rows))
            log_ps.append(tests[-1].detail["log_p"])
        matrices, layer_tests = testresults.layer_results(
            [m for m in alignment.layer_matrices if m.component == comp.name], MIN_LAYERS
        )
        tests += layer_tests
        tests += [t for t in map(layer_map_result, matrices) if t is not None]  # issue 11: no-line maps
        layer_log_ps = [t.detail["log_p"] for t in tests if t.name in ("layer-diagonal", "layer-map")]
        log_ps += layer_log_ps
        tests += testresults.std_curves(rows)
        decided = units.coordinates_decide(
            [(m.pair.role, m.pair.layer, m.pair.suspect.name, stats.log10_p(m.test.log_p)) for m in rows]
        )
        matchings = []
        if not decided:  # fingerprints: every unit, on the kept rows whose every column is stored
            featured, lost = keptunits.with_features(pairs, suspect, reference)
            tests += [lost] if lost else []
            done = frozenset((m.group, m.layer) for m in featured)
            matchings = sorted(
                [*units.match_component(pairs, suspect, done=done), *featured],
                key=lambda m: -1 if m.layer is None else m.layer,
            )
        if decided:
            reason, weakest = decided
            tests.append(TestResult("unit-matching (skipped)", statistic=weakest, p_value=None, null=reason))
        for result in testresults.matching_results(matchings):
            tests.append(result)
            log_ps.append(result.detail["log_p"])
        # A rotation no shared vocabulary could undo leaves the MLP units' Gram matrices alone.
        grams = invariants.unit_grams(pairs) if rotation_not_fitted(alignment) else []
        gram = invariants.gram_result(grams)
        if gram is not None:
            tests.append(gram)
            log_ps.append(gram.detail["log_p"])
        coordinate_log_p = tests[0].detail["log_p"] if rows else float("nan")
        structural = structural_kind(alignment, comp.name, matrices, (coordinate_log_p, gram))  # issue 11
        if structural in ("rotated", "norm-folded"):
            tests.append(disguise_result(alignment))
        if any(p.paired_by == "heads-pooled" for p in pairs):  # also under another kind (rotated)
            tests.append(pooled_heads_result(alignment, comp.name))
        compared = sum(m.numel for m in rows)
        unpaired_reference = [
            n for n in alignment.unpaired_reference if reference.component_of(n) == comp.name
        ]
        draft = ComponentComparison(
            suspect_component=comp.name,
            component_kind=comp.kind,
            reference=reference_name,
            reference_component=_reference_component(rows),
            verdict="not_comparable",
            kind=None,
            p_value=None,
            params=comp.params,
            share=comp.params / total,
            coverage=compared / comp.params if comp.params else 0.0,
            pearson=statistics.median(m.pearson for m in rows) if rows else None,
            params_compared=compared,
            tensors_compared=len(rows),
            tests=tests,
            layer_matrices=matrices,
            not_comparable=not_comparable,
            unpaired_suspect=[n for n in alignment.unpaired_suspect if suspect.component_of(n) == comp.name],
            unpaired_reference=unpaired_reference,
        )
        out.append(
            Assessment(
                draft=draft,
                rows=rows,
                matchings=matchings,
                log_p=stats.cauchy_combine(log_ps) if log_ps else float("nan"),
                identical=structural is None
                and rules.identical(
                    rows,
                    exact_layers=all(m.pair.layer == m.pair.reference_layer for m in rows),
                    complete=not not_comparable and not unpaired_reference,
                ),
                spread=spread(rows, matchings, layer_log_ps, grams) if log_ps else None,
                extra_tests=max(0, len(log_ps) - 1),
                corr_weight=tests[0].detail["corr_weight"] if rows else 1.0,
                kind=structural or rules.kind(rows, matchings, matrices, not_comparable, suspect, reference),
                blind_spots=seen_through(blind_spots(comp.name, suspect, signs), alignment, gram),
                fixed_params=sum(
                    suspect.checkpoint.info(n).numel
                    for n, _ in alignment.excluded
                    if n in comp.tensors and _computed(suspect.checkpoint.info(n).dtype)
                ),
            )
        )
    return out


def finalize(
    assessments: Sequence[Assessment], suspect_params: int, untested: int = 0
) -> tuple[list[ComponentComparison], list[str]]:
    """Holm across every component and reference, then the verdict rules; plus the warnings.

    ``untested`` tests belong to the family but were not run (registry entries a filter left out):
    each counts as p = 1, so the bar rises with them and none of them is ever rejected."""
    log_ps = [a.log_p for a in assessments]
    adjusted = stats.holm(log_ps + [0.0] * untested)[: len(log_ps)]
    family = sum(1 for lp in log_ps if math.isfinite(lp)) + untested or 1
    out, warnings = [], []
    for a, adj in zip(assessments, adjusted, strict=True):
        power = (
            stats.detectable_r(
                [m.metrics.n for m in a.rows],
                [m.metrics.null_inflation for m in a.rows],
                ALPHA_DERIVED / family,
                extra_tests=a.extra_tests,
                corr_weight=a.corr_weight,
            )
            if a.rows
            else None
        )
        holm_shift = adj - a.log_p if math.isfinite(adj) else 0.0
        spread_ok = a.spread is not None and a.spread.passed(holm_shift, ALPHA_DERIVED)
        verdict = rules.verdict(
            compared=bool(a.draft.tensors_compared),
            identical=a.identical,
            log_p=adj,
            power=power,
            spread_ok=spread_ok,
            blind_spots=a.blind_spots,
        )
        kind = a.kind if verdict == "derived" else None
        if verdict == "identical":
            kind = "copied" if a.kind == "copied" else "converted"
        tests = list(a.draft.tests)
        if math.isfinite(a.log_p):
            tests.append(testresults.combined_result(a.draft.tests, adj, a.log_p, family))
        if a.spread is not None and rules.significant(adj, ALPHA_DERIVED) and not a.identical:
            tests.append(
                testresults.spread_result(
                    a.spread.log_p + holm_shift, a.spread.left_out, a.spread.share, spread_ok
                )
            )
        groups = provenance(a.rows, a.matchings, verdict, suspect_params, kind)
        comp = replace(
            a.draft,
            verdict=verdict,
            kind=kind,
            p_value=stats.p_of(adj) if math.isfinite(adj) else None,
            power=power,
            tests=tests,
            provenance=groups,
            blind_spots=list(a.blind_spots) + _concentration(a, verdict, spread_ok, adj),
        )
        comp = replace(comp, shares=component_shares(comp, suspect_params, a.fixed_params))
        comp = replace(comp, explanation=_explain(comp, adj) + _conversions(comp, a.rows))
        out.append(comp)
        warnings.extend(_warnings(comp, a))
    return out, warnings


def _concentration(a: Assessment, verdict: str, spread_ok: bool, adj: float) -> list[str]:
    """The reason a significant component is not called derived: its evidence is concentrated."""
    if (
        verdict != "inconclusive"
        or spread_ok
        or a.spread is None
        or not rules.significant(adj, ALPHA_DERIVED)
    ):
        return []
    carriers = a.spread.carriers
    names = ", ".join(m.label for m in carriers[:5]) + (", ..." if len(carriers) > 5 else "")
    held = sum(m.numel for m in carriers)
    share = held / a.draft.params_compared if a.draft.params_compared else 0.0
    return [
        f"the evidence rests on {len(carriers)} tensor(s) holding {share:.2%} of the compared parameters "
        f"({names}); without the strongest of them the rest is not significant, or they are too small a "
        "part of the component to speak for it"
    ]


# -- words ------------------------------------------------------------------------------------------


def _explain(comp: ComponentComparison, log_p: float) -> str:
    if comp.verdict == "not_comparable":
        return "No learned tensor of this component had a shape-compatible counterpart."
    r = f"{comp.pearson:.3g}" if comp.pearson is not None and math.isfinite(comp.pearson) else "n/a"
    text = f"Median Pearson {r} over {comp.tensors_compared} tensor pair(s); combined p {_p_text(log_p)} after Holm."
    unit = next((t for t in comp.tests if t.name.startswith("unit-matching-similarity")), None)
    if unit is not None and unit.detail.get("layers"):
        layers = unit.detail["layers"]
        sim = statistics.mean(x["similarity"] for x in layers)
        null = statistics.mean(x["null_similarity"] for x in layers)
        text += f" Matched units agree at {sim:.3g} against {null:.3g} for unrelated weights."
    located = provenance_text(comp)
    if located and comp.verdict in ("derived", "identical"):
        text += f" By layer: {located}."
    if comp.verdict == "independent" and comp.power is not None:
        text += (
            f" A correlation of {comp.power:.2g} common to the compared tensors would have been detected "
            "(median power at the derived threshold)."
        )
    if comp.verdict in ("independent", "inconclusive"):
        text += " " + not_tested(comp)
    if comp.verdict == "inconclusive" and comp.power is not None and comp.power > MAX_DETECTABLE_R:
        text += f" Too little was comparable: only a correlation of {comp.power:.2g} or more could have been detected."
    for reason in comp.blind_spots:
        text += f" Not called independent: {reason}."
    return text


TRACE_WORDS = {
    "float grid": "rounded to a float format",
    "integer grid": "rounded onto an integer grid",
    "float rounding": "with float rounding errors",
}


def _conversions(comp: ComponentComparison, rows: Sequence[MeasuredPair]) -> str:
    """For a converted copy, what made each difference a change of precision (or '')."""
    if comp.kind != "converted":
        return ""
    counts = Counter(
        "bitwise equal"
        if m.metrics.bit_identical
        else "equal in value"
        if m.metrics.max_abs_diff == 0
        else TRACE_WORDS[m.metrics.conversion_trace]  # converted: every other row carries a trace
        for m in rows
        if m.metrics is not None
    )
    parts = ", ".join(f"{n} {what}" for what, n in counts.most_common())
    return f" Every difference is a change of precision: of the tensor pairs, {parts}."


def not_tested(comp: ComponentComparison) -> str:
    """What the tests that ran could not have seen."""
    tested = ["element-wise correspondence of the compared tensors"]
    if any(t.name.startswith("unit-matching") for t in comp.tests):
        tested.append("permutations of MLP units, heads or experts")
    if any(t.name == "layer-diagonal" for t in comp.tests):
        tested.append("reordered or dropped layers")
    return (
        f"Tested: {', '.join(tested)}. Not tested: a rotation of the residual stream (with norm gains folded) "
        "or per-unit rescaling, and any tensor that could not be paired."
    )


def _warnings(comp: ComponentComparison, a: Assessment) -> list[str]:
    where = f"{comp.suspect_component} vs {comp.reference}"
    out = []
    trap = [
        m
        for m in a.rows
        if m.metrics.cosine >= TRAP_COSINE
        and m.metrics.cosine_null >= UNINFORMATIVE_COSINE
        and abs(m.pearson) < TRAP_PEARSON
    ]
    if trap:
        worst = max(trap, key=lambda m: m.metrics.cosine - abs(m.pearson))
        out.append(
            f"{where}: raw cosine is at least {TRAP_COSINE} for {len(trap)} tensor pair(s) (e.g. {worst.label}: "
            f"cosine {worst.metrics.cosine:.4f}, Pearson {worst.pearson:.4f}), but raw cosine with no element-wise "
            "correspondence at all would already be about as high for these positive, near-constant tensors; "
            "it is shown, not used as evidence."
        )
    if comp.verdict != "not_comparable" and comp.coverage < LOW_COVERAGE:
        out.append(
            f"{where}: only {comp.coverage:.4%} of the component's parameters could be compared "
            f"({comp.params_compared:,} of {comp.params:,}); the verdict speaks for that part only."
        )
    median_abs_r = statistics.median(abs(m.pearson) for m in a.rows) if a.rows else float("nan")
    if comp.verdict == "derived" and comp.kind != "permuted" and median_abs_r < WEAK_SIGNAL_R:
        out.append(
            f"{where}: derived on a weak signal (median |r| {median_abs_r:.3f}); the verdict rests on the "
            "calibration of the nulls over many values. Compare with a known-independent control."
        )
    if comp.blind_spots and comp.verdict == "inconclusive":
        out.append(f"{where}: not called independent: " + "; ".join(comp.blind_spots) + ".")
    return out


def _computed(dtype: str) -> bool:
    """Float tensors set aside are computed tables (a share of their own); integer and boolean ones
    (indices, masks, or a mask where the reference has a weight) stay 'not compared'."""
    return not dtype.upper().startswith(("I", "U", "BOOL"))


def _p_text(log_p: float) -> str:
    if not math.isfinite(log_p):
        return "n/a"
    exponent = stats.log10_p(log_p)
    if exponent < -300:
        return f"10^{exponent:.0f}"
    return f"{math.exp(log_p):.2g}"


def _reference_component(rows: Sequence[MeasuredPair]) -> str | None:
    if not rows:
        return None
    return statistics.mode(m.pair.reference_component for m in rows)
