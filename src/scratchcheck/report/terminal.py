"""The terminal report (rich): a headline per component, a compact table, warnings, explanations."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..evidence.provenance import provenance_text
from ..results import ComparisonReport, ComponentComparison
from . import fmt
from .narrative import explain as explain_component
from .narrative import notes

if TYPE_CHECKING:  # a comparison's report does not load the inspection code
    from ..inspection import ModelInspection


def render_compare(report: ComparisonReport, console: Console, *, explain: bool = False) -> None:
    """Print a comparison: overall verdict, one headline per component, a table, then warnings."""
    console.print(
        Text.assemble(
            "Overall verdict: ",
            (fmt.verdict_text(report.verdict).upper(), fmt.VERDICT_STYLES.get(report.verdict, "bold")),
            f" — {report.headline}" if report.headline else "",
        )
    )
    console.print(_model_line("suspect", report.suspect))
    for ref in report.references:
        console.print(_model_line("reference", ref))
    for line in fmt.sampled_notes(report.sampled):
        console.print(Text(line, style="dim"))
    console.print()
    for comp in report.components:
        console.print(_headline(comp))
    if report.components:
        console.print()
        console.print(_table(report, console.width))
    warnings = notes(report)
    if warnings:
        console.print(
            Panel(
                Group(*(Text("• " + w.text) for w in warnings)),
                title="Warnings",
                title_align="left",
                border_style="yellow",
                box=box.ROUNDED,
            )
        )
    observations = _observations(report)
    if observations:
        console.print(
            Panel(
                Group(*observations),
                title="Metadata channel (separate from the weight verdicts)",
                title_align="left",
                box=box.ROUNDED,
            )
        )
    if explain:
        for comp in report.components:
            console.print(
                Panel(
                    Text("\n\n".join(explain_component(report, comp))),
                    title=escape(f"{comp.suspect_component}: {fmt.verdict_text(comp.verdict)}"),
                    title_align="left",
                    box=box.ROUNDED,
                )
            )


def _observations(report: ComparisonReport) -> list[Text]:
    """Strong and weak metadata observations per reference; 'none' ones are left to the files."""
    lines = []
    for ref, channel in (report.metadata or {}).items():
        for obs in (channel or {}).get("observations", []) or []:
            strength = obs.get("strength", "none")
            if strength in ("strong", "weak"):
                lines.append(
                    Text.assemble(
                        (f"{strength:<6} ", "bold red" if strength == "strong" else "yellow"),
                        f"vs {fmt.model_name(ref)}: {obs.get('finding', '')}",
                    )
                )
    return lines


def _model_line(role: str, model) -> Text:
    return Text(
        f"{role:<10} {fmt.model_name(model.path)}  ({model.format}, {fmt.params(model.params)} params, "
        f"{model.tensors} tensors)  {model.path}"
    )


def _headline(comp: ComponentComparison) -> Text:
    """``vision (vision tower): DERIVED from ref [vision]`` and one line of its numbers."""
    style = fmt.VERDICT_STYLES.get(comp.verdict, "bold")
    ref = fmt.model_name(comp.reference) + (
        f" [{comp.reference_component}]" if comp.reference_component else ""
    )
    title = fmt.component_title(comp.suspect_component, comp.component_kind)
    line = Text.assemble(
        (comp.suspect_component, "bold"),
        title[len(comp.suspect_component) :] + ": ",
        (fmt.verdict_text(comp.verdict).upper(), style),
        f" {fmt.VERDICT_PREPOSITIONS.get(comp.verdict, 'vs')} {ref}\n",
    )
    numbers = [
        f"{fmt.params(comp.params)} params, {fmt.share(comp.share)} of the model",
        fmt.p_is(comp.p_value),
        f"Pearson {fmt.corr(comp.pearson)}",
        f"coverage {fmt.share(comp.coverage)} ({comp.tensors_compared} tensors)",
    ]
    line.append("  " + " · ".join(numbers))
    extra = []
    if comp.kind:
        extra.append(f"kind: {comp.kind}")
    for matrix in comp.layer_matrices[:1]:
        if matrix.layer_map not in ("none", ""):
            extra.append(f"layer map: {matrix.layer_map}")
    if comp.margin is not None and comp.runner_up:
        extra.append(f"margin {fmt.number(comp.margin)} over {fmt.model_name(comp.runner_up)}")
    if comp.power is not None:
        extra.append(f"detectable |r| >= {fmt.corr(comp.power)}")
    if extra:
        line.append("\n  " + " · ".join(extra))
    located = provenance_text(comp)
    if located and comp.verdict in ("derived", "identical") and len(comp.provenance) > 1:
        line.append(f"\n  by layer: {located}")
    for reason in comp.blind_spots:
        line.append(f"\n  not called independent: {reason}", "yellow")
    return line


def _table(report: ComparisonReport, width: int) -> Table:
    """One row per component. On a narrow console the reference column (when there is only one
    reference, already named above) and the tensor count (in the headline) are left out."""
    show_reference = len(report.references) > 1 or width >= 110
    show_tensors = width >= 100
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("component", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    if show_reference:
        table.add_column("reference", overflow="fold")
    for name in ("params", "share", "coverage", "Pearson", "p-value") + (
        ("tensors",) if show_tensors else ()
    ):
        table.add_column(name, justify="right", no_wrap=True)
    for comp in report.components:
        row = [
            escape(comp.suspect_component),
            Text(fmt.verdict_text(comp.verdict), fmt.VERDICT_STYLES.get(comp.verdict, "")),
        ]
        if show_reference:
            row.append(escape(fmt.model_name(comp.reference)))
        row += [
            fmt.params(comp.params),
            fmt.share(comp.share),
            fmt.share(comp.coverage),
            fmt.corr(comp.pearson),
            fmt.p_value(comp.p_value),
        ]
        if show_tensors:
            row.append(str(comp.tensors_compared))
        table.add_row(*row)
    return table


def render_inspect(inspection: ModelInspection, console: Console) -> None:
    """Print what a checkpoint holds: files, sizes, dtypes, name prefixes, configs, components."""
    console.print(
        Text(f"{fmt.model_name(inspection.path)}  ({inspection.format})  {inspection.path}", "bold")
    )
    total_bytes = sum(int(f.get("bytes", 0)) for f in inspection.files)
    console.print(
        f"{len(inspection.files)} file(s), {total_bytes:,} bytes · {inspection.tensors:,} tensors"
        + (f" (+{inspection.aux_tensors} auxiliary)" if inspection.aux_tensors else "")
        + f" · {inspection.params:,} parameters ({fmt.params(inspection.params)})"
    )
    for f in inspection.files[:10]:
        console.print(Text(f"  {f.get('path')}  {int(f.get('bytes', 0)):,} bytes"))
    if len(inspection.files) > 10:
        console.print(f"  ... and {len(inspection.files) - 10} more")
    total = inspection.params or 1
    dtypes = _small_table("dtype", "params", "share")
    for dtype, n in sorted(inspection.dtypes.items(), key=lambda kv: -kv[1]):
        dtypes.add_row(escape(dtype), f"{n:,}", fmt.share(n / total))
    components = _small_table("component", "kind", "params", "share", "tensors")
    for c in inspection.components:
        components.add_row(escape(c.name), c.kind, f"{c.params:,}", fmt.share(c.share), str(c.tensors))
    prefixes = _small_table("prefix", "params", "share", "tensors")
    for p in inspection.prefixes[:20]:
        prefixes.add_row(escape(p.prefix), f"{p.params:,}", fmt.share(p.share), str(p.tensors))
    if len(inspection.prefixes) > 20:
        prefixes.add_row(f"... {len(inspection.prefixes) - 20} more", "", "", "")
    console.print(dtypes, components, prefixes)
    if inspection.configs:
        configs = _small_table("config", "path", "model_type", "architectures")
        for c in inspection.configs:
            configs.add_row(
                escape(c.file),
                escape(c.path),
                escape(c.model_type or "-"),
                escape(", ".join(c.architectures or [])),
            )
        console.print(configs)
    if inspection.metadata:
        console.print(_metadata_findings(inspection.metadata))
    for warning in inspection.warnings:
        console.print(Text("warning: " + warning, "yellow"))


def _small_table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in ("params", "share", "tensors") else "left")
    return table


def _metadata_findings(findings: dict) -> Panel:
    """One model's own metadata findings (the metadata channel), never mixed with weight results."""
    lines = []
    for fact in findings.get("config_facts", []) or []:
        lines.append(f"{fact.get('kind')}: {fact.get('value')}  ({fact.get('file')} {fact.get('json_path')})")
    tok = findings.get("tokenizer")
    if tok:
        lines.append(
            f"tokenizer: {tok.get('kind')}, {tok.get('vocab_size')} tokens, {tok.get('num_merges')} merges"
        )
    for lic in findings.get("licences", []) or []:
        lines.append(f"licence: {lic.get('licence')} ({lic.get('file')})")
    for problem in findings.get("problems", []) or []:
        lines.append(f"not read: {problem.get('file')}: {problem.get('reason')}")
    return Panel(
        Group(*(Text(line) for line in lines or ["no metadata findings"])),
        title="Metadata channel (config, tokenizer, code; separate from the weights)",
        title_align="left",
        box=box.ROUNDED,
    )
