"""``scratchcheck scan SUSPECT``: which registered model is each component of SUSPECT from?"""

from __future__ import annotations

from pathlib import Path

import click

from .compare_cmd import write_staged
from .options import check_output_paths, console, network_option
from .registry_cmd import open_registry, registry_option

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command("scan")
@click.argument("suspect")
@click.option(
    "--top", type=click.IntRange(min=1), default=5, show_default=True, help="Sources listed per component."
)
@click.option("--json", "json_path", type=_OUT, help="Write the scan as JSON (schema scratchcheck.scan/1).")
@click.option("--html", "html_path", type=_OUT, help="Write a self-contained HTML report.")
@click.option("--markdown", "markdown_path", type=_OUT, help="Write a Markdown summary.")
@registry_option
@network_option
def scan_command(
    suspect: str,
    top: int,
    json_path: Path | None,
    html_path: Path | None,
    markdown_path: Path | None,
    registry_path: Path | None,
    allow_network: bool,
) -> None:
    """Rank, per component of SUSPECT (a model or FILE.scfp), the registered models it comes from."""
    from ..registry.scan import scan
    from ..report.batch_progress import BatchProgress
    from ..report.scan_report import render_scan, write_scan_html, write_scan_json, write_scan_markdown

    check_output_paths(json=json_path, html=html_path, markdown=markdown_path)
    out = console()
    with open_registry(registry_path, create=False) as registry, BatchProgress(out) as progress:
        report = scan(suspect, registry, top=top, allow_network=allow_network, progress=progress)
    render_scan(report, out)
    jobs = [
        (path, write)
        for path, write in (
            (json_path, write_scan_json),
            (html_path, write_scan_html),
            (markdown_path, write_scan_markdown),
        )
        if path is not None
    ]
    for path in write_staged(report, jobs):
        click.echo(f"written: {path}")
