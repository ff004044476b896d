"""The scan's reports: terminal, Markdown, HTML and JSON (``scratchcheck.scan/1``), from one set of sentences.

Each component gets one sentence (its nearest source, with p, Pearson and margin, and the models
reached through it; or "no known source" with the power of the tests) and one table row per match.
"""

from __future__ import annotations

import html
import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..registry.scan_results import ComponentScan, ScanReport, SourceMatch
from . import fmt
from ._atomic import write_text_atomic
from .markdown import table as markdown_table

_HEADER = [
    "component",
    "rank",
    "registered model",
    "verdict",
    "kind",
    "p (registry-wide)",
    "Pearson",
    "coverage",
]


def headline(report: ScanReport, comp: ComponentScan) -> str:
    """One sentence: what this component comes from, or that nothing registered is its source."""
    what = (
        f"{fmt.component_title(comp.component, comp.kind)}, {fmt.params(comp.params)} params, "
        f"{fmt.share(comp.share)} of the model"
    )
    if not comp.sources:
        power = (
            f"a common |r| ≥ {fmt.corr(comp.power)}"
            if comp.power is not None
            else "nothing (no tensor was comparable)"
        )
        return (
            f"{what}: no known source among {report.registry_size} registered model(s) "
            f"({comp.compared} compared in full); the tests would have detected {power} at a "
            f"registry-wide level of {report.alpha:g}."
        )
    lead = comp.sources[0]
    kind = f" ({lead.kind})" if lead.kind else ""
    text = (
        f"{what}: {fmt.verdict_text(lead.verdict)} {fmt.VERDICT_PREPOSITIONS.get(lead.verdict, 'vs')} "
        f"{lead.entry}{kind}, {fmt.p_is(lead.p_value)}, Pearson {fmt.corr(lead.pearson)}"
    )
    if comp.margin is not None and comp.runner_up is not None:
        text += f", margin {fmt.corr(comp.margin)} over {comp.runner_up}"
    for m in comp.behind:
        if m.relation == "ancestor":
            text += f"; {m.entry} is a declared ancestor, reached through {m.through}"
        else:
            text += (
                f"; {m.entry} is reached through {m.through}, to which it is related "
                "(an ancestor or a sibling: the weights do not say which)"
            )
    return text + "."


def rows(comp: ComponentScan) -> list[list[str]]:
    matches: list[tuple[str, SourceMatch]] = [(str(i + 1), m) for i, m in enumerate(comp.sources)]
    matches += [(f"via {m.through}", m) for m in comp.behind]
    if comp.best_independent is not None:
        matches.append(("closest", comp.best_independent))
    return [
        [
            comp.component,
            rank,
            m.entry,
            fmt.verdict_text(m.verdict),
            m.kind or "",
            fmt.p_value(m.p_value),
            fmt.corr(m.pearson),
            fmt.share(m.coverage),
        ]
        for rank, m in matches
    ]


def _title(report: ScanReport) -> str:
    return (
        f"scratchcheck scan: {fmt.model_name(report.suspect)} against {report.registry_size} registered "
        f"model(s), {report.candidates} sharing a tensor shape with it, {report.screened} kept by the screen"
    )


def render_scan(report: ScanReport, console: Console) -> None:
    console.print(Text(_title(report), style="bold"))
    for comp in report.components:
        console.print("• " + headline(report, comp), markup=False, highlight=False)
    body = [r for comp in report.components for r in rows(comp)]
    if body:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for i, column in enumerate(_HEADER):
            table.add_column(column, justify="right" if i >= 5 else "left", overflow="fold")
        for row in body:
            table.add_row(*row)
        console.print(table)


def render_scan_markdown(report: ScanReport) -> str:
    out = [f"## {_title(report)}", ""]
    out += [f"- {headline(report, comp)}" for comp in report.components]
    body = [r for comp in report.components for r in rows(comp)]
    if body:
        out += ["", markdown_table(_HEADER, body, right={5, 6, 7})]
    out += ["", f"p-values are Holm-adjusted over components × {report.registry_size} registry entries."]
    return "\n".join(out) + "\n"


def render_scan_html(report: ScanReport) -> str:
    e = html.escape
    items = "".join(f"<li>{e(headline(report, c))}</li>" for c in report.components)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
        for comp in report.components
        for row in rows(comp)
    )
    head = "".join(f"<th>{e(h)}</th>" for h in _HEADER)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(_title(report))}</title><style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ccc;padding:.2em .6em;text-align:left}"
        "</style></head><body>"
        f"<h1>{e(_title(report))}</h1><ul>{items}</ul>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>p-values are Holm-adjusted over components × {report.registry_size} registry entries; "
        f"scratchcheck {e(report.version)}.</p></body></html>\n"
    )


def write_scan_json(report: ScanReport, path: str | os.PathLike[str]) -> Path:
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text_atomic(path, text + "\n")


def write_scan_markdown(report: ScanReport, path: str | os.PathLike[str]) -> Path:
    return write_text_atomic(path, render_scan_markdown(report))


def write_scan_html(report: ScanReport, path: str | os.PathLike[str]) -> Path:
    return write_text_atomic(path, render_scan_html(report))


@cache
def scan_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``scratchcheck.scan/1``."""
    return json.loads(resources.files(__package__).joinpath("scan.schema.json").read_text(encoding="utf-8"))
