"""The words of every report: warnings a reader must see, and plain-language explanations."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..align.layermap import describe
from ..evidence.thresholds import LOW_COVERAGE, TRAP_COSINE, TRAP_PEARSON
from ..results import ComparisonReport, ComponentComparison
from . import fmt
from .digest import measured, tensors_of


@dataclass(frozen=True)
class Note:
    """One warning: ``kind`` is raw-cosine | excluded | low-coverage | not-comparable | pipeline."""

    kind: str
    text: str


def notes(report: ComparisonReport) -> list[Note]:
    """Everything a reader must know before trusting a number, pipeline warnings first."""
    out = [Note("pipeline", w) for w in report.warnings]
    flagged = [t for t in report.tensors if t.learned and t.raw_cosine_uninformative]
    trap = [
        t
        for t in flagged
        if t.cosine is not None
        and t.pearson is not None
        and t.cosine >= TRAP_COSINE
        and abs(t.pearson) < TRAP_PEARSON
    ]
    # The pipeline warns about the trap itself (with the numbers); this note covers the rest.
    if flagged and not trap:
        out.append(
            Note(
                "raw-cosine",
                f"{len(flagged)} tensor(s) (norm gains, biases) have a raw cosine that would be high for "
                "any two models; it is marked uninformative and Pearson is used instead.",
            )
        )
    excluded = _excluded(report)
    if excluded:
        reasons = sorted({reason for _, reason in excluded if reason})
        names = ", ".join(name for name, _ in excluded[:3]) + (", ..." if len(excluded) > 3 else "")
        out.append(
            Note(
                "excluded",
                f"{len(excluded)} non-learned tensor(s) excluded from the evidence ({names})"
                + (f": {'; '.join(reasons)}" if reasons else "")
                + ". Fixed tables are identical in independent models of the same configuration.",
            )
        )
    for comp in report.components:
        name = fmt.component_title(comp.suspect_component, comp.component_kind)
        if comp.verdict == "not_comparable":
            why = "; ".join(sorted({n.reason for n in comp.not_comparable})) or "no tensor could be paired"
            out.append(
                Note(
                    "not-comparable",
                    f"{name}: not comparable with {fmt.model_name(comp.reference)} ({why}); "
                    "this is not evidence of independence.",
                )
            )
    return out


def _excluded(report: ComparisonReport) -> list[tuple[str, str]]:
    """(tensor, reason) of every non-learned tensor, from the pairs and from the coverage records."""
    found: dict[str, str] = {}
    for t in report.tensors:
        if not t.learned:
            found.setdefault(t.suspect, t.excluded_reason or "")
    for cov in report.coverage:
        for entry in cov.excluded:
            if entry:
                found.setdefault(str(entry[0]), str(entry[1]) if len(entry) > 1 else "")
    return list(found.items())


def layer_map(comp: ComponentComparison) -> str | None:
    """How suspect layers map to reference layers, in words, from the first matrix that found a map."""
    for matrix in comp.layer_matrices:
        if matrix.layer_map == "identity":
            return "suspect layer i is most similar to reference layer i (a diagonal)"
        if matrix.layer_map == "offset" and matrix.mapping:
            shift = matrix.mapping[0][1] - matrix.mapping[0][0]
            return f"suspect layer i is most similar to reference layer i{shift:+d} (a shifted diagonal)"
        if matrix.layer_map == "stride":
            return "suspect layers match every few reference layers (layers were dropped or merged)"
        if matrix.layer_map in ("repeated", "reordered") and matrix.mapping:
            return f"the layers follow a map ({matrix.layer_map}): {describe(matrix.mapping)}"
        if matrix.layer_map not in ("none", "", None):
            return f"the layers follow a '{matrix.layer_map}' map"
    return None


_DOES_NOT_SHOW = {
    "identical": "which model came first or who copied whom, nor anything about training data, code or "
    "the other components, which have verdicts of their own.",
    "derived": "which of the two came first, how much further training went into the {label}, or "
    "anything about the other components, which have verdicts of their own.",
    "independent": "that the {label} was trained from scratch. Only {ref} was tested: a copy of a model "
    "that is not among the references, or a copy changed beyond what this test can see, would not be found.",
    "inconclusive": "reuse, nor its absence. A closer reference (a sibling size of the same family), more "
    "of the component being comparable, or the metadata channel may settle it.",
    "not_comparable": "independence. Tensors of different shapes cannot be compared value by value; "
    "shape-free fingerprints or the metadata channel are the remaining evidence.",
}


def explain(report: ComparisonReport, comp: ComponentComparison) -> list[str]:
    """Three plain-language paragraphs: what was compared, what the test showed, what it does not show."""
    label = fmt.component_label(comp.component_kind)
    ref = fmt.model_name(comp.reference)
    ref_part = fmt.component_label(comp.component_kind) if comp.reference_component else "model"
    size = f"{fmt.params(comp.params)} parameters, {fmt.share(comp.share)} of the model"
    if comp.verdict == "not_comparable" or not comp.tensors_compared:
        what = (
            f"What was compared: the suspect's {label} ({size}) with {ref}. No tensor of it could be "
            "paired with a reference tensor of a compatible shape, so no weights were compared."
        )
    else:
        transformed = [t.transform for t in tensors_of(report, comp) if t.transform]
        what = (
            f"What was compared: the suspect's {label} ({size}) with the {ref_part} of {ref}. "
            f"{comp.tensors_compared} tensor pair(s), holding {fmt.share(comp.coverage)} of the "
            f"{label}'s parameters, were compared value by value"
            + (
                f", {len(transformed)} of them after undoing a difference in how they are stored "
                f"(e.g. {transformed[0]})"
                if transformed
                else ""
            )
            + "."
        )
    return [what, _showed(report, comp, label), "What it does not show: " + _caveat(comp, label, ref)]


def _showed(report: ComparisonReport, comp: ComponentComparison, label: str) -> str:
    r = fmt.corr(comp.pearson)
    chance = (
        f"If the two had been trained independently, agreement this strong would arise by chance with "
        f"probability {fmt.p_is(comp.p_value)}."
    )
    if comp.verdict == "identical":
        text = "What the test showed: every compared tensor is bit-for-bit identical to the reference's."
    elif comp.verdict == "derived":
        text = (
            f"What the test showed: the weights move together. The median Pearson correlation is {r} "
            f"(1 means the same values, 0 means no relation). {chance}"
        )
        if comp.kind:
            text += f" The pattern of the differences looks like: {comp.kind}."
    elif comp.verdict == "independent":
        text = (
            f"What the test showed: the median Pearson correlation is {r}, what two unrelated models give "
            f"({fmt.p_is(comp.p_value)}); there is no sign of shared weights."
        )
        if comp.power is not None and math.isfinite(comp.power):
            text += f" The test would have detected a correlation as small as {fmt.corr(comp.power)}."
    elif comp.verdict == "inconclusive":
        text = f"What the test showed: neither clear agreement nor clear independence (median Pearson {r}, {fmt.p_is(comp.p_value)})."
    else:
        text = "What the test showed: nothing; there was nothing to measure."
    mapping = layer_map(comp)
    if mapping and comp.verdict in ("identical", "derived", "inconclusive"):
        text += f" Layer by layer, {mapping}, as expected when one was made from the other."
    if comp.margin is not None and comp.runner_up:
        text += (
            f" It matches {fmt.model_name(comp.reference)} better than the runner-up "
            f"{fmt.model_name(comp.runner_up)} by {fmt.number(comp.margin)} in Pearson."
        )
    if comp.verdict != "not_comparable" and comp.coverage is not None and comp.coverage < LOW_COVERAGE:
        text += (
            f" Only {fmt.share(comp.coverage)} of the {label} could be compared; the result covers that part."
        )
    untrusted = [t for t in measured(tensors_of(report, comp)) if t.raw_cosine_uninformative]
    if untrusted:
        text += (
            f" For {len(untrusted)} tensor(s) such as norm gains, the raw cosine similarity is high for any "
            "two models and was not used as evidence."
        )
    if comp.explanation:
        text += " " + comp.explanation
    return text


def _caveat(comp: ComponentComparison, label: str, ref: str) -> str:
    return _DOES_NOT_SHOW.get(comp.verdict, _DOES_NOT_SHOW["inconclusive"]).format(label=label, ref=ref)
