"""``scratchcheck compare SUSPECT REFERENCE...``: per-component verdicts with their evidence."""

from __future__ import annotations

from pathlib import Path

import click

from .options import console, network_option

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command("compare")
@click.argument("suspect")
@click.argument("references", nargs=-1, required=True)
@click.option("--component", help="Compare only this suspect component (e.g. vision, language_model).")
@click.option(
    "--json", "json_path", type=_OUT, help="Write the full report as JSON (schema scratchcheck.compare/1)."
)
@click.option("--html", "html_path", type=_OUT, help="Write a self-contained HTML report.")
@click.option("--markdown", "markdown_path", type=_OUT, help="Write a Markdown summary.")
@click.option("--explain", is_flag=True, help="Add a plain-language paragraph per component.")
@network_option
def compare_command(
    suspect: str,
    references: tuple[str, ...],
    component: str | None,
    json_path: Path | None,
    html_path: Path | None,
    markdown_path: Path | None,
    explain: bool,
    allow_network: bool,
) -> None:
    """Compare SUSPECT with one or more REFERENCES, component by component."""
    from ..compare import compare
    from ..report.progress import StreamProgress
    from ..report.terminal import render_compare

    out = console()
    with StreamProgress(out) as progress:
        report = compare(
            suspect, list(references), component=component, progress=progress, allow_network=allow_network
        )
    render_compare(report, out, explain=explain)
    for path in write_reports(report, json_path=json_path, html_path=html_path, markdown_path=markdown_path):
        click.echo(f"written: {path}")


def write_reports(
    report, *, json_path: Path | None, html_path: Path | None, markdown_path: Path | None
) -> list[Path]:
    """Write each requested report file; returns the paths written."""
    written = []
    if json_path is not None:
        from ..report.json_report import write_json

        write_json(report, json_path)
        written.append(json_path)
    if html_path is not None:
        from ..report.html import write_html

        write_html(report, html_path)
        written.append(html_path)
    if markdown_path is not None:
        from ..report.markdown import write_markdown

        write_markdown(report, markdown_path)
        written.append(markdown_path)
    return written
