"""The Markdown report: summary and tables, ready to paste into an issue or an article."""

from __future__ import annotations

import os
from pathlib import Path

from ..evidence.provenance import provenance_text
from ..results import ComparisonReport
from . import fmt
from ._atomic import write_text_atomic
from .digest import role_rows, table_tensors, tensors_of
from .narrative import explain, notes

TENSOR_ROWS = 40  # per component: the least similar pairs; every pair is in the JSON report


def _cell(value: object) -> str:
    """A table cell: pipes escaped (GFM needs it inside code spans too), one line, never empty."""
    text = str(value).replace("|", "\\|").replace("\n", " ").strip()
    return text or " "


def table(header: list[str], rows: list[list[object]], right: set[int] | None = None) -> str:
    """A GitHub-flavoured table; columns in ``right`` are right-aligned (numbers)."""
    right = right or set()
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _raw_cosine(t) -> str:
    """Raw cosine only ever beside Pearson, and marked where it says nothing."""
    text = fmt.corr(t.cosine)
    return f"~~{text}~~ (uninformative)" if t.raw_cosine_uninformative else text


def render_markdown(report: ComparisonReport) -> str:
    """The report as Markdown: verdicts, warnings, per-component tables, metadata observations."""
    refs = ", ".join(f"`{fmt.model_name(r.path)}`" for r in report.references)
    out = [
        f"## scratchcheck: `{fmt.model_name(report.suspect.path)}` vs {refs}",
        "",
        f"**Overall verdict: {fmt.verdict_text(report.verdict)}**"
        + (f" — {report.headline}." if report.headline else ".")
        + f" Suspect: {fmt.params(report.suspect.params)} parameters, {report.suspect.format}.",
        "",
        *[f"_{line}_\n" for line in fmt.sampled_notes(report.sampled)],
    ]
    for comp in report.components:
        label = fmt.component_label(comp.component_kind)
        out.append(
            f"- **{comp.suspect_component}** ({label}, {fmt.params(comp.params)} params, "
            f"{fmt.share(comp.share)} of the model): **{fmt.verdict_text(comp.verdict)}** "
            f"{fmt.VERDICT_PREPOSITIONS.get(comp.verdict, 'vs')} `{fmt.model_name(comp.reference)}` — "
            f"{fmt.p_is(comp.p_value)}, Pearson {fmt.corr(comp.pearson)}, coverage {fmt.share(comp.coverage)}"
        )
    out += [
        "",
        table(
            [
                "component",
                "verdict",
                "reference",
                "params",
                "share",
                "coverage",
                "Pearson",
                "p-value",
                "tensors",
            ],
            [
                [
                    comp.suspect_component,
                    fmt.verdict_text(comp.verdict) + (f" ({comp.kind})" if comp.kind else ""),
                    fmt.model_name(comp.reference),
                    fmt.params(comp.params),
                    fmt.share(comp.share),
                    fmt.share(comp.coverage),
                    fmt.corr(comp.pearson),
                    fmt.p_value(comp.p_value),
                    comp.tensors_compared,
                ]
                for comp in report.components
            ],
            right={3, 4, 5, 6, 7, 8},
        ),
    ]
    warnings = notes(report)
    if warnings:
        out += ["", "### Warnings", ""] + [f"- {w.text}" for w in warnings]
    for comp in report.components:
        out += ["", f"### {comp.suspect_component}: {fmt.verdict_text(comp.verdict)}", ""]
        out += [paragraph + "\n" for paragraph in explain(report, comp)]
        located = provenance_text(comp)
        if located and comp.verdict in ("derived", "identical") and len(comp.provenance) > 1:
            out += [f"By layer: {located}.\n"]
        out += [f"Not called independent: {reason}.\n" for reason in comp.blind_spots]
        if comp.tests:
            out += [
                table(
                    ["test", "statistic", "p-value", "n", "null hypothesis"],
                    [
                        [t.name, fmt.number(t.statistic), fmt.p_value(t.p_value), t.n, t.null]
                        for t in comp.tests
                    ],
                    right={1, 2, 3},
                ),
                "",
            ]
        tensors = tensors_of(report, comp)
        roles = role_rows(tensors)
        if roles:
            out += [
                table(
                    ["role", "tensors", "median Pearson", "min Pearson", "median rel. L2", "bit-identical"],
                    [
                        [
                            f"`{s.role}`",
                            s.tensors,
                            fmt.corr(s.pearson_median),
                            fmt.corr(s.pearson_min),
                            fmt.number(s.rel_l2_median),
                            s.bit_identical,
                        ]
                        for s in roles
                    ],
                    right={1, 2, 3, 4, 5},
                ),
                "",
            ]
        rows, left_out = table_tensors([t for t in tensors if t.learned], TENSOR_ROWS)
        if rows:
            note = f" (the {len(rows)} least similar of {len(rows) + left_out}; all are in the JSON report)"
            out += [
                f"<details><summary>Per-tensor table{note if left_out else ''}</summary>",
                "",
                table(
                    [
                        "suspect tensor",
                        "reference tensor",
                        "Pearson",
                        "raw cosine",
                        "rel. L2",
                        "max abs diff",
                    ],
                    [
                        [
                            f"`{t.suspect}`",
                            f"`{t.reference}`",
                            fmt.corr(t.pearson),
                            _raw_cosine(t),
                            fmt.number(t.rel_l2),
                            fmt.number(t.max_abs_diff),
                        ]
                        for t in rows
                    ],
                    right={2, 3, 4, 5},
                ),
                "",
                "</details>",
            ]
    observations = [
        [
            fmt.model_name(ref),
            o.get("strength", ""),
            o.get("channel", ""),
            o.get("finding", ""),
            o.get("meaning", ""),
        ]
        for ref, channel in (report.metadata or {}).items()
        for o in (channel or {}).get("observations", []) or []
    ]
    if observations:
        out += [
            "",
            "### Metadata channel (separate from the weight verdicts)",
            "",
            table(["reference", "strength", "channel", "finding", "meaning"], observations),
        ]
    out += ["", f"<sub>scratchcheck {report.version}, report schema {report.schema}</sub>", ""]
    return "\n".join(out)


def write_markdown(report: ComparisonReport, path: str | os.PathLike[str]) -> Path:
    """Write the Markdown report atomically (complete or absent)."""
    return write_text_atomic(path, render_markdown(report))
