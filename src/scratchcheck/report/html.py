"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

import os
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..results import VERDICTS, ComparisonReport, ComponentComparison
from . import fmt, svg
from ._atomic import write_text_atomic
from .digest import layer_profile, role_rows, table_tensors, tensors_of, verdict_shares
from .narrative import explain, layer_map, notes

TEMPLATES = Path(__file__).with_name("templates")
TENSOR_ROWS = 300  # per component; beyond this the least similar pairs are listed (full data: the JSON)

# What each test measures and its null, for the method section (tests the pipeline names otherwise
# are listed with the null sentence the pipeline gave).
METHODS = {
    "coordinate-shuffle": "Pearson correlation of the two tensors' values, position by position. Null: no "
    "element-wise correspondence (the values of one tensor in random order); then r·√(n−1) is standard "
    "normal, so the p-value is exact without simulation.",
    "layer-diagonal": "Mismatched-layer contrast: the similarity of suspect layer i with every reference "
    "layer j. Null: matched layers are no more alike than mismatched ones; a derived model shows a "
    "diagonal, independent models a flat matrix.",
    "unit-matching-identity": "Hidden units (rows) are matched across the models by the Hungarian "
    "algorithm; Spearman's rank correlation tests whether the matching is the identity. Null: the "
    "matching is a random permutation (robust to permuted units only when combined with matching).",
    "fisher": "Fisher's method combines independent p-values: −2 Σ log p follows χ² with 2k degrees of "
    "freedom when every null holds.",
}


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
    env.globals.update(colours=fmt.VERDICT_COLOURS, prepositions=fmt.VERDICT_PREPOSITIONS)
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
        "heatmaps": [(m, Markup(svg.heatmap(m))) for m in comp.layer_matrices if m.values],
        "profiles": [Markup(svg.profile(stats, "pearson")), Markup(svg.profile(stats, "rel_l2"))]
        if stats
        else [],
        "roles": role_rows(tensors),
        "tensors": rows,
        "tensors_left_out": left_out,
        "tensors_total": len(tensors),
    }


def _rank(verdict: str) -> int:
    return VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)


def render_html(report: ComparisonReport) -> str:
    """The report as one HTML document."""
    tests = {}
    for comp in report.components:
        for test in comp.tests:
            tests.setdefault(test.name, METHODS.get(test.name, test.null))
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            r=report,
            components=[_component_view(report, c) for c in report.components],
            shares=sorted(verdict_shares(report).items(), key=lambda kv: _rank(kv[0])),
            warnings=notes(report),
            tests=tests,
            methods=METHODS,
            scale=Markup(svg.colour_scale()),
            metadata=report.metadata or {},
        )
    )


def write_html(report: ComparisonReport, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report atomically (complete or absent)."""
    return write_text_atomic(path, render_html(report))
