"""Rules over the metadata channel: config values naming a reference, the tokenizer, code and licences.

They read the observations ``metadata.compare_metadata`` made per reference (``report.metadata``),
so a rule says exactly what the metadata section of the comparison report says, with its file and key.
"""

from __future__ import annotations

from typing import Any

from ..report.fmt import share
from ..results import ComparisonReport
from .declarations import Declarations
from .policy import Rule
from .results import Evidence, Outcome, worst


def _observations(channel: dict[str, Any], kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    return [o for o in channel.get("observations", []) if o["channel"] in kinds and o["strength"] == "strong"]


def _disclosed(
    declarations: Declarations, reference: str, value: str, subjects: tuple[str, ...] | None = None
) -> tuple[Outcome, str]:
    """(outcome, note) for something taken from ``reference``: PASS when a declaration covers it."""
    allow = declarations.naming(value) if value else None
    allow = allow or declarations.covering(reference, subjects)
    if allow is None:
        return Outcome.FAIL, "not declared"
    check = declarations.check(allow, None)
    return check.outcome, ("disclosed: " if check.outcome == Outcome.PASS else "") + check.note


def metadata_leak(
    rule: Rule, report: ComparisonReport, declarations: Declarations
) -> tuple[Outcome, str, list[Evidence]]:
    """No config value (path, model id, sub-config model type, commit hash) naming a reference,
    unless that borrowing is declared."""
    evidence: dict[str, Evidence] = {}
    for reference, channel in (report.metadata or {}).items():
        facts = {f"{f['file']} {f['json_path']}": f for f in channel["suspect"]["config_facts"]}
        for obs in _observations(channel, ("config",)):
            for where in obs["where"] or ["config"]:
                if facts.get(where, {}).get("kind") == "base_model":
                    continue  # a model card's base_model is a declaration, not a leak
                value = facts.get(where, {}).get("value")
                outcome, how = _disclosed(declarations, reference, value if isinstance(value, str) else "")
                evidence.setdefault(
                    where, Evidence(where, outcome, f"{obs['finding']} ({how})", reference=reference)
                )
    found = list(evidence.values())
    if not found:
        return Outcome.PASS, "no config value names a reference", []
    outcome = worst([e.outcome for e in found])
    leaks = [e.subject for e in found if e.outcome != Outcome.PASS]
    summary = (
        f"undisclosed: {', '.join(leaks)}"
        if leaks
        else f"{len(found)} config value(s) name a reference, all disclosed"
    )
    return outcome, summary, found


def tokenizer(
    rule: Rule, report: ComparisonReport, declarations: Declarations
) -> tuple[Outcome, str, list[Evidence]]:
    """The suspect's tokenizer is not a reference's (vocabulary overlap and merge list), unless declared."""
    evidence = []
    for reference, channel in (report.metadata or {}).items():
        overlap = channel.get("tokenizer_overlap")
        if overlap is None:
            evidence.append(
                Evidence(
                    "tokenizer",
                    Outcome.UNDETERMINED,
                    "no tokenizer to compare on one side",
                    reference=reference,
                )
            )
            continue
        strong = _observations(channel, ("tokenizer",))
        figures = f"vocabulary overlap (Jaccard) {share(overlap['jaccard'])}"
        if overlap["jaccard"] < rule.max_jaccard and not strong:
            evidence.append(Evidence("tokenizer", Outcome.PASS, f"{figures}: its own", reference=reference))
            continue
        outcome, how = _disclosed(declarations, reference, "", ("tokenizer",))
        finding = strong[0]["finding"] if strong else figures
        evidence.append(Evidence("tokenizer", outcome, f"{finding} ({how})", reference=reference))
    if not evidence:
        return Outcome.UNDETERMINED, "no reference to compare the tokenizer with", []
    outcome = worst([e.outcome for e in evidence])
    summary = {
        Outcome.PASS: "the tokenizer is the suspect's own (or declared)",
        Outcome.FAIL: "the tokenizer is a reference's",
        Outcome.UNDETERMINED: "the tokenizer could not be compared",
    }[outcome]
    return outcome, summary, evidence


def code_licence(
    rule: Rule, report: ComparisonReport, declarations: Declarations
) -> tuple[Outcome, str, list[Evidence]]:
    """No reference's modeling code or model-specific licence shipped, unless the borrowing is declared."""
    evidence = []
    for reference, channel in (report.metadata or {}).items():
        for obs in _observations(channel, ("code", "licence")):
            outcome, how = _disclosed(declarations, reference, "")
            subject = ", ".join(obs["where"]) or obs["channel"]
            evidence.append(Evidence(subject, outcome, f"{obs['finding']} ({how})", reference=reference))
    if not evidence:
        return Outcome.PASS, "no reference code or model-specific licence found", []
    outcome = worst([e.outcome for e in evidence])
    summary = "reference code or licence shipped" + (" and declared" if outcome == Outcome.PASS else "")
    return outcome, summary, evidence
