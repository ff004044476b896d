"""From measured pairs to a verdict per component: tests, their combination, rules, words.

Per suspect component and reference, ``assess`` runs three kinds of test, each with a known null:
the coordinate test of every learned tensor pair (``stats.coordinate_test``), the diagonal of each
i x j layer matrix (``stats.layer_diagonal_test``), and unit matching under the network's
symmetries (``units.match``). Coordinate tests are summed (size-weighted Stouffer, with the
null correlation of vectors that share a basis); the test families are then joined by the Cauchy
method, which stays valid when tests are dependent (they read the same two models). ``finalize``
then controls the
family-wise error across all components and references (Holm), applies the rules below, names the
kind of derivation when the traces tell it, and writes the warnings a reader must see.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

from ..align import Alignment
from ..arch import ModelLayout
from ..results import ComponentComparison, LayerMatrix, NotComparable, TensorComparison, TestResult
from . import stats, units
from .metrics import PairMetrics

ALPHA_DERIVED = 1e-6  # family-wise p (after Holm) below which a component is called derived
ALPHA_SOME = 1e-3  # below this, some evidence that is not enough: inconclusive
MAX_DETECTABLE_R = 0.5  # "independent" only if a common |r| this small would have been detected
IDENTICAL_PEARSON = 0.99  # "identical within conversion error": every tensor at least this close (norm
# gains near 1 lose some centred correlation to bf16 rounding, whose step is large against their spread)
IDENTICAL_REL_L2 = 1e-2  # ... and within 1% in L2 (bf16, fp16, 8-bit round trips)
LOW_COVERAGE = 0.5
TRAP_COSINE = 0.9  # raw cosine a reader would call "similar"
NOISE_SCALE_CV = 0.1  # a noised copy changes every matrix by the same relative amount (fine-tunes: 0.2+)
MIN_LAYERS = 4  # the layer-diagonal test needs 4! = 24 orderings to reach p < 0.05


@dataclass(frozen=True)
class TensorEvidence:
    """The numbers of one pair that the tests need beyond its record (no sample arrays kept)."""

    evidence: stats.Evidence
    inflation: float
    std_suspect: float
    std_reference: float
    cosine_null: float
    delta_scale_corr: float = float("nan")
    on_coarser_grid: bool = False
    # Vectors only: both sides centred and scaled to unit length, for the null correlation of
    # their statistics with other vectors of the same basis (norm gains of different layers).
    directions: tuple[np.ndarray, np.ndarray] | None = None
    weight: float = 0.0  # Stouffer weight: sqrt((n - 1) / inflation), fixed by size alone


@dataclass(frozen=True)
class Assessment:
    """One component against one reference, before multiple-testing control."""

    draft: ComponentComparison
    log_p: float  # combined, unadjusted
    identical: bool
    sizes: list[int] = field(default_factory=list)
    inflations: list[float] = field(default_factory=list)
    extra_tests: int = 0
    corr_weight: float = 1.0
    kind: str | None = None
    trap: list[TensorComparison] = field(default_factory=list)
    median_abs_r: float = float("nan")


# -- per tensor -----------------------------------------------------------------------------------


def tensor_evidence(metrics: PairMetrics | None) -> TensorEvidence | None:
    """The coordinate test of one pair against 'no element-wise correspondence'."""
    if metrics is None:
        return None
    vector = metrics.ndim < 2
    ev = stats.coordinate_test(metrics.pearson, metrics.n, metrics.null_inflation, vector=vector)
    whole = metrics.sample_a.size == metrics.n  # the sample is the whole vector, in order
    return TensorEvidence(
        ev,
        metrics.null_inflation,
        metrics.std_a,
        metrics.std_b,
        metrics.cosine_null,
        metrics.delta_scale_corr,
        metrics.on_coarser_grid,
        directions=(_direction(metrics.sample_a), _direction(metrics.sample_b)) if vector and whole else None,
        weight=math.sqrt(max(metrics.n - 1, 0) / max(metrics.null_inflation, 1.0)),
    )


def _direction(x: np.ndarray) -> np.ndarray:
    centred = np.asarray(x, dtype=np.float64) - float(np.mean(x))
    norm = float(np.linalg.norm(centred))
    return (centred / norm).astype(np.float32) if norm > 0 else np.zeros(centred.shape, np.float32)


def tensor_record(
    pair, metrics: PairMetrics | None, reference: str, evidence: TensorEvidence | None = None
) -> TensorComparison:
    evidence = evidence or tensor_evidence(metrics)
    m = metrics
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
        cosine=m.cosine if m else None,
        pearson=m.pearson if m else None,
        rel_l2=m.rel_l2 if m else None,
        max_abs_diff=m.max_abs_diff if m else None,
        frac_equal=m.frac_equal if m else None,
        bit_identical=m.bit_identical if m else None,
        spearman=m.spearman if m else None,
        p_value=stats.p_of(evidence.evidence.log_p) if evidence else None,
        delta_rel_scale=m.rel_l2 if m else None,
        delta_corr=m.delta_corr if m else None,
        delta_kurtosis=m.delta_kurtosis if m else None,
        # Raw cosine says nothing when the no-correspondence value alone is already high.
        raw_cosine_uninformative=bool(m and m.cosine_null > 0.5),
        transform=pair.transform,
    )


# -- per component --------------------------------------------------------------------------------


def assess(
    suspect: ModelLayout,
    reference: ModelLayout,
    alignment: Alignment,
    records: list[TensorComparison],
    reference_name: str,
    evidence: list[TensorEvidence | None] | None = None,
) -> list[Assessment]:
    """Every test for every suspect component against this reference (before Holm)."""
    if evidence is None:  # records alone: the p-values they carry, shuffle null
        evidence = [_from_record(r) for r in records]
    total = sum(c.params for c in suspect.components) or 1
    matrices = list(getattr(alignment, "layer_matrices", []) or [])
    out = []
    for comp in suspect.components:
        rows = [
            (r, e)
            for r, e in zip(records, evidence, strict=True)
            if r.suspect_component == comp.name
            and r.learned
            and e is not None
            and math.isfinite(e.evidence.log_p)
        ]
        pairs = [p for p in alignment.pairs if p.learned and p.suspect_component == comp.name]
        not_comparable = [n for n in alignment.not_comparable if suspect.component_of(n.suspect) == comp.name]
        tests: list[TestResult] = []
        log_ps: list[float] = []
        if rows:
            tests.append(_coordinate_result(rows))
            log_ps.append(tests[-1].detail["log_p"])
        comp_matrices = []
        for matrix in (m for m in matrices if m.component == comp.name):
            if min(len(matrix.values), len(matrix.values[0]) if matrix.values else 0) < MIN_LAYERS:
                comp_matrices.append(matrix)  # too few layers for a permutation test to say anything
                continue
            ev, (stride, offset) = stats.layer_diagonal_test(matrix.values)
            comp_matrices.append(
                replace(matrix, p_value=stats.p_of(ev.log_p) if math.isfinite(ev.log_p) else None)
            )
            if math.isfinite(ev.log_p):
                tests.append(_layer_result(matrix, ev, stride, offset))
                log_ps.append(ev.log_p)
        for value, role in _std_curves(rows):
            tests.append(replace(screening(value), name=f"screening: std-curve correlation ({role})"))
        decided = units.coordinates_decide(
            [(r.role, r.layer, r.suspect, stats.log10_p(e.evidence.log_p)) for r, e in rows]
        )
        matchings = [] if decided else units.match_component(pairs, suspect)
        if decided:
            reason, weakest = decided
            tests.append(TestResult("unit-matching (skipped)", statistic=weakest, p_value=None, null=reason))
        for result in _matching_results(matchings):
            tests.append(result)
            log_ps.append(result.detail["log_p"])
        log_p = stats.cauchy_combine(log_ps) if log_ps else float("nan")
        records_only = [r for r, _ in rows]
        compared = sum(r.numel for r in records_only)
        median_r = statistics.median(r.pearson for r in records_only) if records_only else None
        draft = ComponentComparison(
            suspect_component=comp.name,
            component_kind=comp.kind,
            reference=reference_name,
            reference_component=_reference_component(records_only, comp.name),
            verdict="not_comparable",
            kind=None,
            p_value=None,
            params=comp.params,
            share=comp.params / total,
            coverage=compared / comp.params if comp.params else 0.0,
            pearson=median_r,
            params_compared=compared,
            tensors_compared=len(records_only),
            tests=tests,
            layer_matrices=comp_matrices,
            not_comparable=not_comparable,
            unpaired_suspect=[n for n in alignment.unpaired_suspect if suspect.component_of(n) == comp.name],
            unpaired_reference=[
                n for n in alignment.unpaired_reference if reference.component_of(n) == comp.name
            ],
        )
        out.append(
            Assessment(
                draft=draft,
                log_p=log_p,
                identical=bool(rows)
                and all(_within_conversion(r, e) for r, e in rows)
                and _uniformly_changed(records_only)
                and not not_comparable
                and not draft.unpaired_reference
                and all(r.layer == r.reference_layer for r in records_only),
                sizes=[r.numel for r in records_only],
                inflations=[e.inflation for _, e in rows],
                extra_tests=max(0, len(log_ps) - 1),
                corr_weight=tests[0].detail["corr_weight"] if rows else 1.0,
                kind=_kind(records_only, matchings, comp_matrices, not_comparable, suspect, reference),
                trap=[
                    r
                    for r, e in rows
                    if (r.cosine or 0) >= TRAP_COSINE and e.cosine_null >= 0.5 and abs(r.pearson) < 0.5
                ],
                median_abs_r=statistics.median(abs(r.pearson) for r in records_only)
                if records_only
                else float("nan"),
            )
        )
    return out


def finalize(assessments: list[Assessment]) -> tuple[list[ComponentComparison], list[str]]:
    """Holm across every component and reference, then the verdict rules; plus the warnings."""
    adjusted = stats.holm([a.log_p for a in assessments])
    family = sum(1 for a in assessments if math.isfinite(a.log_p)) or 1
    out, warnings = [], []
    for a, adj in zip(assessments, adjusted, strict=True):
        power = (
            stats.detectable_r(
                a.sizes,
                a.inflations,
                ALPHA_DERIVED / family,
                extra_tests=a.extra_tests,
                corr_weight=a.corr_weight,
            )
            if a.sizes
            else None
        )
        verdict = _verdict(a, adj, power)
        kind = a.kind if verdict == "derived" else None
        if verdict == "identical":
            kind = "copied" if a.kind == "copied" else "converted"
        tests = list(a.draft.tests)
        if math.isfinite(a.log_p):
            tests.append(
                TestResult(
                    "combined",
                    statistic=len(a.draft.tests),
                    p_value=stats.p_of(adj),
                    null="the tests above combined by the Cauchy method (valid under dependence), then "
                    f"Holm-adjusted across {family} component/reference comparison(s)",
                    n=len(a.draft.tests),
                    detail={"log10_p": stats.log10_p(adj), "log10_p_unadjusted": stats.log10_p(a.log_p)},
                )
            )
        comp = replace(
            a.draft,
            verdict=verdict,
            kind=kind,
            p_value=stats.p_of(adj) if math.isfinite(adj) else None,
            power=power,
            tests=tests,
        )
        comp = replace(comp, explanation=_explain(comp, a, adj))
        out.append(comp)
        warnings.extend(_warnings(comp, a))
    return out, warnings


def _verdict(a: Assessment, log_p: float, power: float | None) -> str:
    if not a.draft.tensors_compared and not math.isfinite(log_p):
        return "not_comparable"
    if a.identical:
        return "identical"
    if math.isfinite(log_p) and log_p < math.log(ALPHA_DERIVED):
        return "derived"
    if not math.isfinite(log_p) or log_p < math.log(ALPHA_SOME):
        return "inconclusive"
    if power is None or not math.isfinite(power) or power > MAX_DETECTABLE_R:
        return "inconclusive"
    return "independent"


def _uniformly_changed(rows: list[TensorComparison]) -> bool:
    """A conversion touches every matrix or none; some matrices bitwise equal and others changed
    is an edit (a merged LoRA, a partial fine-tune), however small."""
    matrices = [r.bit_identical for r in rows if len(r.shape) >= 2]
    return all(matrices) or not any(matrices)


def _within_conversion(r: TensorComparison, e: TensorEvidence) -> bool:
    """Bitwise equal, or off by what a change of precision leaves: tiny, and shaped like rounding
    (one side on a bf16/fp16/fp8 grid; errors growing with the value, as floating-point rounding
    does; or flat-topped, as a fixed quantisation step does). Gaussian noise of the same size is a
    noised copy, not a conversion."""
    if r.bit_identical:
        return True
    if (r.pearson or 0.0) < IDENTICAL_PEARSON or (
        r.rel_l2 if r.rel_l2 is not None else 1.0
    ) > IDENTICAL_REL_L2:
        return False
    if e.on_coarser_grid:
        return True
    kurt = r.delta_kurtosis if r.delta_kurtosis is not None else float("nan")
    return (math.isfinite(kurt) and kurt < 2.6) or (
        math.isfinite(e.delta_scale_corr) and e.delta_scale_corr > 0.3
    )


def _kind(
    rows: list[TensorComparison],
    matchings: list[units.Matching],
    matrices: list[LayerMatrix],
    not_comparable: list[NotComparable],
    suspect: ModelLayout,
    reference: ModelLayout,
) -> str | None:
    """The kind of derivation the traces point to (a description, not a test)."""
    if not rows:
        return None
    found = [
        m
        for m in matchings
        if math.isfinite(m.similarity.log_p) and m.similarity.log_p < math.log(ALPHA_SOME)
    ]
    if found and statistics.mean(m.identity_fraction for m in found) < 0.5:
        return "permuted"
    if any(m.layer_map in ("stride", "offset") for m in matrices) or any(
        r.layer is not None and r.reference_layer is not None and r.layer != r.reference_layer for r in rows
    ):
        return "layer-dropped"
    if _pruned(not_comparable, suspect, reference):
        return "pruned"
    if all(r.bit_identical for r in rows):
        return "copied"
    matrices_rows = [r for r in rows if len(r.shape) >= 2 and r.pearson is not None]
    kurt = [
        r.delta_kurtosis
        for r in matrices_rows
        if r.delta_kurtosis is not None and math.isfinite(r.delta_kurtosis)
    ]
    if not kurt:
        return "fine-tuned"
    median_kurt = statistics.median(kurt)
    if min(r.pearson for r in matrices_rows) >= 0.99 and median_kurt < 2.6:
        return "quantised"  # bounded, flat-topped rounding error (uniform: kurtosis 1.8)
    scales = [r.rel_l2 for r in matrices_rows if r.rel_l2]
    corr = [
        abs(r.delta_corr) for r in matrices_rows if r.delta_corr is not None and math.isfinite(r.delta_corr)
    ]
    if (
        2.6 <= median_kurt <= 3.6
        and corr
        and statistics.median(corr) < 0.1
        and len(scales) > 1
        and statistics.pstdev(scales) < NOISE_SCALE_CV * statistics.mean(scales)
    ):
        return "noised"  # Gaussian, uncorrelated with the weights, the same relative size everywhere
    return "fine-tuned"


def _pruned(not_comparable: list[NotComparable], suspect: ModelLayout, reference: ModelLayout) -> bool:
    """Some pair differs in one axis only, the suspect's smaller: rows or units were cut away."""
    for n in not_comparable:
        try:
            a, b = suspect.checkpoint.info(n.suspect).shape, reference.checkpoint.info(n.reference).shape
        except (KeyError, AttributeError, ValueError):
            continue
        if (
            len(a) == len(b)
            and sum(x != y for x, y in zip(a, b, strict=True)) == 1
            and all(x <= y for x, y in zip(a, b, strict=True))
        ):
            return True
    return False


# -- results and words ------------------------------------------------------------------------------


def _coordinate_result(rows: list[tuple[TensorComparison, TensorEvidence]]) -> TestResult:
    """Size-weighted Stouffer over the tensors' coordinate tests, with their null correlation.

    Distinct matrices are distinct parameters: under the null their statistics are uncorrelated
    (their covariance under a common basis rotation is <X_k'Y_k, X_j'Y_j> / d, which vanishes
    unless the tensors are near-duplicates). Vectors of one basis are not: norm gains of
    different layers share outlier dimensions, and the covariance of their statistics is exactly
    <x_k, x_j><y_k, y_j> for the centred unit vectors, which enters the combination.
    """
    zs = [e.evidence.z for _, e in rows]
    weights = [e.weight for _, e in rows]
    corr = _null_correlation([e for _, e in rows])
    log_p = stats.stouffer(zs, weights, corr)
    w = np.asarray(weights)
    rs = [r.pearson for r, _ in rows]
    return TestResult(
        "coordinate-shuffle",
        statistic=statistics.median(rs),
        p_value=stats.p_of(log_p),
        null="no element-wise correspondence: the reference's values in random order (vectors: a random "
        "rotation, exact Student t; matrices: the wider of the shuffle and the row/column rotation "
        "nulls), per tensor; one-sided size-weighted Stouffer across tensors with the null correlation "
        "of vectors that share a basis",
        n=len(rows),
        detail={
            "log_p": log_p,
            "log10_p": stats.log10_p(log_p),
            "log10_p_cauchy": stats.log10_p(stats.cauchy_combine([e.evidence.log_p for _, e in rows])),
            "median_pearson": statistics.median(rs),
            "tensors_p_below_0.001": sum(e.evidence.log_p < math.log(1e-3) for _, e in rows),
            "max_null_inflation": max(e.inflation for _, e in rows),
            "corr_weight": float(w @ corr @ w / (w @ w)) if w @ w > 0 else 1.0,
        },
    )


def _null_correlation(evidence: list[TensorEvidence]) -> np.ndarray:
    corr = np.eye(len(evidence))
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, e in enumerate(evidence):
        if e.directions is not None:
            by_length[e.directions[0].size].append(i)
    for idx in by_length.values():
        if len(idx) > 1:
            a = np.stack([evidence[i].directions[0] for i in idx]).astype(np.float64)
            b = np.stack([evidence[i].directions[1] for i in idx]).astype(np.float64)
            block = (a @ a.T) * (b @ b.T)
            np.fill_diagonal(block, 1.0)
            corr[np.ix_(idx, idx)] = block
    return corr


def _layer_result(matrix: LayerMatrix, ev: stats.Evidence, stride: int, offset: int) -> TestResult:
    return TestResult(
        "layer-diagonal",
        statistic=ev.effect,
        p_value=stats.p_of(ev.log_p),
        null=f"no layer correspondence ({matrix.role}): reference layers in random order; the best "
        "diagonal (shifted or strided) is searched in the data and in every permutation alike",
        n=ev.n,
        detail={"log_p": ev.log_p, "log10_p": stats.log10_p(ev.log_p), "stride": stride, "offset": offset},
    )


def _matching_results(matchings: list[units.Matching]) -> list[TestResult]:
    out = []
    groups = sorted({m.group for m in matchings})
    for group in groups:
        ms = [m for m in matchings if m.group == group]
        sim = stats.cauchy_combine([m.similarity.log_p for m in ms])
        ident = stats.cauchy_combine([m.identity.log_p for m in ms])
        per_layer = [
            {
                "layer": m.layer,
                "matched": f"{m.units} of {m.total}",
                "similarity": round(m.matched_similarity, 4),
                "null_similarity": round(m.null_similarity, 4),
                "identity_fraction": round(m.identity_fraction, 4),
                "seconds": round(m.seconds, 3),
            }
            for m in ms
        ]
        if math.isfinite(sim):
            out.append(
                TestResult(
                    f"unit-matching-similarity ({group})",
                    statistic=statistics.mean(m.matched_similarity for m in ms),
                    p_value=stats.p_of(sim),
                    null="matched similarity between unrelated weights: the same Hungarian matching "
                    f"against the reference with its residual basis randomly permuted ({units.NULL_DRAWS} "
                    "draws per layer, Student prediction interval), Cauchy-combined across layers",
                    n=len(ms),
                    detail={"log_p": sim, "log10_p": stats.log10_p(sim), "layers": per_layer},
                )
            )
        if math.isfinite(ident):
            out.append(
                TestResult(
                    f"unit-matching-identity ({group})",
                    statistic=statistics.mean(
                        m.identity.effect for m in ms if math.isfinite(m.identity.effect)
                    ),
                    p_value=stats.p_of(ident),
                    null="the matching is a uniformly random assignment (units are exchangeable in "
                    "training): Spearman of unit index vs matched index, Cauchy-combined across layers",
                    n=len(ms),
                    detail={"log_p": ident, "log10_p": stats.log10_p(ident)},
                )
            )
    return out


def _explain(comp: ComponentComparison, a: Assessment, log_p: float) -> str:
    if comp.verdict == "not_comparable":
        return "No learned tensor of this component had a shape-compatible counterpart."
    p = _p_text(log_p)
    r = f"{comp.pearson:.3g}" if comp.pearson is not None and math.isfinite(comp.pearson) else "n/a"
    text = f"Median Pearson {r} over {comp.tensors_compared} tensor pair(s); combined p {p} after Holm."
    unit = next((t for t in comp.tests if t.name.startswith("unit-matching-similarity")), None)
    if unit is not None and unit.detail.get("layers"):
        layers = unit.detail["layers"]
        sim = statistics.mean(x["similarity"] for x in layers)
        null = statistics.mean(x["null_similarity"] for x in layers)
        text += f" Matched units agree at {sim:.3g} against {null:.3g} for unrelated weights."
    if comp.verdict == "independent" and comp.power is not None:
        text += (
            f" A correlation of {comp.power:.2g} common to the compared tensors would have been detected "
            "(median power at the derived threshold)."
        )
    if comp.verdict == "inconclusive" and comp.power is not None and comp.power > MAX_DETECTABLE_R:
        text += f" Too little was comparable: only a correlation of {comp.power:.2g} or more could have been detected."
    return text


def _warnings(comp: ComponentComparison, a: Assessment) -> list[str]:
    where = f"{comp.suspect_component} vs {comp.reference}"
    out = []
    if a.trap:
        worst = max(a.trap, key=lambda t: (t.cosine or 0) - abs(t.pearson or 0))
        out.append(
            f"{where}: raw cosine is at least {TRAP_COSINE} for {len(a.trap)} tensor pair(s) (e.g. {worst.suspect}: "
            f"cosine {worst.cosine:.4f}, Pearson {worst.pearson:.4f}), but raw cosine with no element-wise "
            "correspondence at all would already be about as high for these positive, near-constant tensors; "
            "it is shown, not used as evidence."
        )
    if comp.verdict not in ("not_comparable",) and comp.coverage < LOW_COVERAGE:
        out.append(
            f"{where}: only {comp.coverage:.4%} of the component's parameters could be compared "
            f"({comp.params_compared:,} of {comp.params:,}); the verdict speaks for that part only."
        )
    if (
        comp.verdict == "derived"
        and comp.kind != "permuted"
        and math.isfinite(a.median_abs_r)
        and a.median_abs_r < 0.05
    ):
        out.append(
            f"{where}: derived on a weak signal (median |r| {a.median_abs_r:.3f}); the verdict rests on the "
            "calibration of the nulls over many values. Compare with a known-independent control."
        )
    return out


def _p_text(log_p: float) -> str:
    if not math.isfinite(log_p):
        return "n/a"
    exponent = stats.log10_p(log_p)
    if exponent < -300:
        return f"10^{exponent:.0f}"
    return f"{math.exp(log_p):.2g}"


def _reference_component(rows: list[TensorComparison], default: str) -> str | None:
    if not rows:
        return None
    return statistics.mode(r.reference_component for r in rows) or default


def _std_curves(rows: list[tuple[TensorComparison, TensorEvidence]]) -> list[tuple[float, str]]:
    """Per role with three or more layers: the correlation of the two per-layer std curves."""
    curves: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for r, e in rows:
        role, layer = units.canonical(r.role, r.layer, r.suspect)
        if layer is not None and math.isfinite(e.std_suspect) and math.isfinite(e.std_reference):
            curves[role].append((layer, e.std_suspect, e.std_reference))
    out = []
    for role, points in sorted(curves.items()):
        if len(points) >= 3:
            a = np.array([p[1] for p in sorted(points)])
            b = np.array([p[2] for p in sorted(points)])
            if a.std() > 0 and b.std() > 0:
                out.append((float(np.corrcoef(a, b)[0, 1]), role))
    return out


def _from_record(r: TensorComparison) -> TensorEvidence | None:
    if not r.learned or r.pearson is None or r.numel < 4:
        return None
    ev = stats.coordinate_test(r.pearson, r.numel, vector=len(r.shape) < 2)
    return TensorEvidence(ev, 1.0, float("nan"), float("nan"), 0.0)


def screening(value: float, null_panel: list[float] | None = None) -> TestResult:
    """A screening statistic (e.g. correlation of per-layer std curves): a percentile, never a verdict."""
    pct = stats.percentile(value, null_panel) if null_panel else float("nan")
    return TestResult(
        "screening: std-curve correlation",
        statistic=value,
        p_value=None,
        null="percentile among independent pairs of a reference panel"
        if null_panel
        else "no null panel: two unrelated models typically give a high value too; not evidence",
        n=len(null_panel or []),
        detail={"percentile": pct},
    )
