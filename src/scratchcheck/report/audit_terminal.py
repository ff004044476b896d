"""The audit in the terminal (rich): the outcome, then one line per rule with the evidence under it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..audit import AuditResult, RuleResult
from . import fmt

_MARKS = {"PASS": "✓", "FAIL": "✗", "UNDETERMINED": "?"}


def render_audit(result: AuditResult, console: Console) -> None:
    """Print an audit: overall outcome and policy, then each rule's outcome, summary and evidence."""
    console.print(
        Text.assemble(
            "Audit: ",
            (str(result.outcome), fmt.OUTCOME_STYLES[result.outcome]),
            f"  under policy {result.policy.name!r}"
            + (f" (extends {', '.join(result.policy.extends)})" if result.policy.extends else ""),
        )
    )
    console.print(Text(f"suspect    {fmt.model_name(result.suspect)}  {result.suspect}"))
    if result.registry is not None:
        r = result.registry
        console.print(
            Text(f"against    {fmt.registry_searched(r.path, r.entries, r.candidates, r.compared)}")
        )
    else:
        for ref in result.references:
            console.print(Text(f"against    {fmt.model_name(ref)}  {ref}"))
    console.print(Text(result.summary))
    console.print()
    width = max((len(r.id) for r in result.rules), default=0)
    for rule in result.rules:
        console.print(_rule_line(rule, width))
        for e in rule.evidence:
            mark = _MARKS[e.outcome]
            console.print(
                Text.assemble(("    " + mark + " ", fmt.OUTCOME_STYLES[e.outcome]), f"{e.subject}: {e.note}")
            )
            if e.tensors:
                console.print(Text(f"        tensors: {', '.join(e.tensors)}", "dim"))
            for line in e.explained:
                console.print(Text(f"        explained: {line}", "dim"))


def _rule_line(rule: RuleResult, width: int) -> Text:
    warn = "  (warning only)" if rule.severity == "warn" else ""
    return Text.assemble(
        (f"{rule.outcome:<13}", fmt.OUTCOME_STYLES[rule.outcome]),
        (f"{escape(rule.id):<{width}}", "bold"),
        f"  {rule.summary}{warn}",
    )
