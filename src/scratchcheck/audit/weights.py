"""Rules over the weight verdicts: each component original, the original share, and whether the
comparison could have seen a copy at all (coverage and power).

A comparison that could not have detected a copy never passes: a component with no power is
UNDETERMINED, and a model of which nothing could be compared is UNDETERMINED under every rule here.
"""

from __future__ import annotations

from ..evidence.thresholds import TRAP_COSINE
from ..report.digest import measured, tensors_of
from ..report.fmt import corr, model_name, p_is, params, share
from ..results import SHARE_KEYS, ComparisonReport, ComponentComparison, TensorComparison
from .declarations import Declarations
from .policy import Rule
from .results import Evidence, Outcome, worst

BORROWED = ("identical", "derived")
TENSORS_SHOWN = 3


def share_by_verdict(report: ComparisonReport) -> dict[str, float]:
    """Share of the suspect's parameters per verdict (every key of ``SHARE_KEYS``, summing to 1),
    from the per-layer provenance groups of each component's best reference."""
    return {key: report.share_by_verdict.get(key, 0.0) for key in SHARE_KEYS}


def in_scope(rule: Rule, comp: ComponentComparison) -> bool:
    names = ("*", comp.suspect_component, comp.component_kind)
    return any(s in names for s in rule.components) and not any(s in names[1:] for s in rule.exclude)


def original(
    rule: Rule, report: ComparisonReport, declarations: Declarations
) -> tuple[Outcome, str, list[Evidence]]:
    """Each component in scope independent of every reference (or a declared borrowing, if allowed)."""
    if not report.components and report.suspect.components:
        # No reference at all (a registry none of whose entries shares a tensor shape with it).
        note = "no reference could be compared with the suspect: nothing shows it original or not"
        return (
            Outcome.UNDETERMINED,
            "nothing could be compared",
            [Evidence("model", Outcome.UNDETERMINED, note)],
        )
    chosen = [c for c in report.components if in_scope(rule, c)]
    compared_any = any(c.params_compared for c in report.components)
    evidence = [_originality(rule, report, c, declarations, compared_any) for c in chosen]
    if not chosen:
        named = "*" not in rule.components
        outcome = Outcome.UNDETERMINED if named else Outcome.PASS
        return (
            outcome,
            f"no component in scope ({', '.join(rule.components)} less {', '.join(rule.exclude) or 'none'})",
            [],
        )
    outcome = worst([e.outcome for e in evidence])
    failing = [e.subject for e in evidence if e.outcome == outcome]
    summary = {
        Outcome.PASS: f"{len(evidence)} component(s) original",
        Outcome.FAIL: f"not original: {', '.join(failing)}",
        Outcome.UNDETERMINED: f"could not be settled: {', '.join(failing)}",
    }[outcome]
    return outcome, summary, evidence


def _originality(
    rule: Rule,
    report: ComparisonReport,
    c: ComponentComparison,
    declarations: Declarations,
    compared_any: bool,
) -> Evidence:
    numbers = f"{p_is(c.p_value)}, Pearson {corr(c.pearson)}, {share(c.share)} of the parameters"
    pairs = measured(tensors_of(report, c))
    tensors: list[str] = []
    if c.verdict in BORROWED:
        tensors = [t.suspect for t in sorted(pairs, key=lambda t: -abs(t.pearson or 0.0))[:TENSORS_SHOWN]]
        groups = [g for g in c.provenance if g.verdict in BORROWED]
        note = f"{c.verdict} from {model_name(c.reference)} ({numbers})"
        if groups and len(groups) < len(c.provenance):  # partly borrowed: say which part
            borrowed = sum(g.share for g in groups)
            note += f"; borrowed: {', '.join(g.group for g in groups)} ({share(borrowed)} of the parameters)"
        allow = (
            declarations.covering(c.reference, (c.suspect_component, c.component_kind))
            if rule.allow_declared
            else None
        )
        outcome = Outcome.FAIL
        if allow is not None:
            check = declarations.check(allow, c.reference, rule.licences)
            outcome, note = check.outcome, f"{note}: {check.note}"
    elif c.verdict == "independent":
        outcome = Outcome.PASS
        note = f"independent of every reference ({numbers}; a common |r| of {corr(c.power)} would have been detected)"
    elif c.verdict == "not_comparable" and rule.not_comparable == "pass" and compared_any:
        outcome = Outcome.PASS
        note = "no tensor has a reference counterpart of its shape: it cannot be a plain copy (not compared)"
    elif c.verdict == "not_comparable":
        outcome = Outcome.UNDETERMINED
        why = (
            "this rule does not accept parts it could not compare"
            if compared_any
            else "nothing in the model could be compared"
        )
        note = f"not comparable with any reference: {why}"
    else:
        outcome = Outcome.UNDETERMINED
        power = f"; only a common |r| of {corr(c.power)} or more could have been detected" if c.power else ""
        blind = f"; blind spots: {'; '.join(c.blind_spots)}" if c.blind_spots else ""
        note = f"{c.verdict} against {model_name(c.reference)} ({numbers}{power}{blind})"
    return Evidence(
        subject=c.suspect_component,
        outcome=outcome,
        note=note,
        reference=c.reference,
        verdict=c.verdict,
        p_value=c.p_value,
        share=c.share,
        coverage=c.coverage,
        power=c.power,
        tensors=tensors,
        explained=_raw_cosine_trap(pairs),
    )


def _raw_cosine_trap(pairs: list[TensorComparison]) -> list[str]:
    """The raw cosines a reader would call "similar" that any two such tensors show (Solar/GLM)."""
    trap = [t for t in pairs if t.raw_cosine_uninformative and (t.cosine or 0.0) >= TRAP_COSINE]
    if not trap:
        return []
    t = trap[0]
    return [
        f"raw cosine >= {TRAP_COSINE} on {len(trap)} tensor pair(s) (e.g. {t.suspect}: cosine {corr(t.cosine)}, "
        f"Pearson {corr(t.pearson)}) is what any two positive, near-constant tensors show: explained, not evidence"
    ]


def original_share(rule: Rule, report: ComparisonReport) -> tuple[Outcome, str, list[Evidence]]:
    """At least ``rule.min`` of the learned parameters (fixed tables left out) tested original
    (independent, layer by layer): FAIL
    when the borrowed share alone rules it out, UNDETERMINED when parts inconclusive or not compared
    could decide it."""
    shares = share_by_verdict(report)
    learned = 1.0 - shares["fixed"] or 1.0  # computed tables are neither original nor borrowed
    borrowed = (shares["identical"] + shares["derived"]) / learned
    original_ = shares["independent"] / learned
    if 1.0 - borrowed < rule.min:
        outcome = Outcome.FAIL
    elif original_ < rule.min:
        outcome = Outcome.UNDETERMINED
    else:
        outcome = Outcome.PASS
    breakdown = ", ".join(f"{v.replace('_', ' ')} {share(s)}" for v, s in shares.items() if s)
    summary = (
        f"{share(original_)} tested original, {share(borrowed)} borrowed, "
        f"{share(1.0 - original_ - borrowed)} open (need {share(rule.min)})"
    )
    note = f"share of the suspect's parameters by verdict, layer by layer: {breakdown}"
    return outcome, summary, [Evidence("model", outcome, note, share=original_)]


def coverage(rule: Rule, report: ComparisonReport) -> tuple[Outcome, str, list[Evidence]]:
    """Enough of the model examined, and every component found independent with power to spare."""
    comps = report.components
    if not any(c.params_compared for c in comps):
        note = "no tensor of the suspect could be compared with any reference: the comparison could not have seen a copy"
        return (
            Outcome.UNDETERMINED,
            "nothing could be compared",
            [Evidence("model", Outcome.UNDETERMINED, note)],
        )
    total = sum(c.params for c in comps) or 1
    examined = (
        sum(min(c.params, c.params_compared + sum(n.numel for n in c.not_comparable)) for c in comps) / total
    )
    evidence = [
        Evidence(
            "model",
            Outcome.PASS if examined >= rule.min_coverage else Outcome.UNDETERMINED,
            f"{share(examined)} of the parameters examined (compared, or with shapes no reference tensor has); "
            f"the rule needs {share(rule.min_coverage)}",
            share=examined,
        )
    ]
    for c in comps:
        if c.verdict not in ("independent", "inconclusive"):
            continue
        weak = c.power is None or c.power > rule.max_detectable_r
        evidence.append(
            Evidence(
                c.suspect_component,
                Outcome.UNDETERMINED if weak else Outcome.PASS,
                f"compared {share(c.coverage)} of its parameters ({params(c.params_compared)} of {params(c.params)}); "
                + (
                    f"a common |r| of {corr(c.power)} would have been detected (the rule needs {corr(rule.max_detectable_r)})"
                    if c.power is not None
                    else "no power could be computed"
                ),
                reference=c.reference,
                verdict=c.verdict,
                coverage=c.coverage,
                power=c.power,
            )
        )
    outcome = worst([e.outcome for e in evidence])
    weak = [e.subject for e in evidence if e.outcome == Outcome.UNDETERMINED]
    summary = (
        f"{share(examined)} examined; power enough in every component found independent"
        if outcome == Outcome.PASS
        else f"too little seen: {', '.join(weak)}"
    )
    return outcome, summary, evidence
