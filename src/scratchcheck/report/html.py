"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

import os
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..evidence.provenance import provenance_text
from ..results import VERDICTS, ComparisonReport, ComponentComparison
from . import fmt, svg
from ._atomic import write_text_atomic
from .digest import layer_profile, role_rows, table_tensors, tensors_of, verdict_shares
from .narrative import explain, layer_map, notes

TEMPLATES = Path(__file__).with_name("templates")
TENSOR_ROWS = 300  # per component; beyond this the least similar pairs are listed (full data: the JSON)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        params=fmt.params,
        share=fmt.share,
        p=fmt.p_value,
        corr=fmt.corr,
        num=fmt.number,
        shape=fmt.shape,
        model=fmt.model_name,
        verdict=fmt.verdict_text,
        label=fmt.component_label,
    )
    env.globals.update(
        colours=fmt.VERDICT_COLOURS, prepositions=fmt.VERDICT_PREPOSITIONS, sampled_notes=fmt.sampled_notes
    )
    return env


def _component_view(report: ComparisonReport, comp: ComponentComparison) -> dict:
    tensors = tensors_of(report, comp)
    rows, left_out = table_tensors(tensors, TENSOR_ROWS)
    stats = layer_profile(tensors)
    return {
        "c": comp,
        "anchor": "c-" + "".join(ch if ch.isalnum() else "-" for ch in comp.suspect_component),
        "explanation": explain(report, comp),
        "layer_map": layer_map(comp),
        "provenance": provenance_text(comp),
        "heatmaps": [(m, Markup(svg.heatmap(m))) for m in comp.layer_matrices if m.values],
        "profiles": [Markup(svg.profile(stats, "pearson")), Markup(svg.profile(stats, "rel_l2"))]
        if stats
        else [],
        "roles": role_rows(tensors),
        "tensors": rows,
        "tensors_left_out": left_out,
        "tensors_total": len(tensors),
    }


def _family(name: str) -> str:
    """A test's name without its per-role or per-group suffix (``unit-matching-identity (mlp units)``)."""
    return name.split(" (", 1)[0]


def _rank(verdict: str) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)


def render_html(report: ComparisonReport) -> str:
    """The report as one HTML document."""
    # Each test is described by the sentence it carries, so the method text cannot drift from the code.
    tests = {}
    for comp in report.components:
        for test in comp.tests:
            tests.setdefault(_family(test.name), test.null)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            r=report,
            components=[_component_view(report, c) for c in report.components],
            shares=sorted(verdict_shares(report).items(), key=lambda kv: _rank(kv[0])),
            warnings=notes(report),
            tests=tests,
            scale=Markup(svg.colour_scale()),
            metadata=report.metadata or {},
        )
    )


def write_html(report: ComparisonReport, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report atomically (complete or absent)."""
    return write_text_atomic(path, render_html(report))
