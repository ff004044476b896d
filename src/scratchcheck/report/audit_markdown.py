"""The audit as Markdown: the outcome, a table of rules, and the evidence of each rule."""

from __future__ import annotations

import os
from pathlib import Path

from ..audit import AuditResult
from . import fmt
from ._atomic import write_text_atomic
from .markdown import table


def render_audit_markdown(result: AuditResult) -> str:
    refs = ", ".join(f"`{fmt.model_name(r)}`" for r in result.references)
    if result.registry is not None:
        r = result.registry
        refs = f"the {fmt.registry_searched(r.path, r.entries, r.candidates, r.compared)}" + (
            f" ({refs})" if refs else ""
        )
    out = [
        f"## scratchcheck audit: `{fmt.model_name(result.suspect)}` — **{result.outcome}**",
        "",
        f"Policy **{result.policy.name}**"
        + (f" (extends {', '.join(result.policy.extends)})" if result.policy.extends else "")
        + f", compared against {refs}. {result.policy.description}",
        "",
        f"**{result.summary}**",
        "",
        table(
            ["rule", "result", "severity", "summary"],
            [[f"`{r.id}`", f"**{r.outcome}**", r.severity, r.summary] for r in result.rules],
        ),
    ]
    for rule in result.rules:
        out += ["", f"### {rule.id}: {rule.outcome}", "", rule.description, ""]
        if not rule.evidence:
            out.append(f"- {rule.summary}")
        for e in rule.evidence:
            out.append(f"- **{e.outcome}** `{e.subject}`: {e.note}")
            if e.tensors:
                out.append(f"  - tensors: {', '.join(f'`{t}`' for t in e.tensors)}")
            out += [f"  - explained: {line}" for line in e.explained]
    out += ["", f"<sub>scratchcheck {result.version}, audit schema {result.schema}</sub>", ""]
    return "\n".join(out)


def write_audit_markdown(result: AuditResult, path: str | os.PathLike[str]) -> Path:
    """Write the Markdown audit atomically (complete or absent)."""
    return write_text_atomic(path, render_audit_markdown(result))
