"""``scratchcheck compare SUSPECT REFERENCE...``: per-component verdicts with their evidence."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from ..errors import ScratchcheckError
from .options import check_output_paths, console, network_option
from .process import one_blas_thread

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command("compare")
@click.argument("suspect")
@click.argument("references", nargs=-1, required=True)
@click.option("--component", help="Compare only this suspect component (e.g. vision, language_model).")
@click.option(
    "--json", "json_path", type=_OUT, help="Write the full report as JSON (schema scratchcheck.compare/1.1)."
)
@click.option("--html", "html_path", type=_OUT, help="Write a self-contained HTML report.")
@click.option("--markdown", "markdown_path", type=_OUT, help="Write a Markdown summary.")
@click.option("--explain", is_flag=True, help="Add a plain-language paragraph per component.")
@click.option(
    "--device",
    default=None,
    help="Run unit features and Gram matrices with torch on this device (e.g. cuda); default: numpy on the CPU.",
)
@click.option(
    "--fast",
    is_flag=True,
    help="Decide from a sample of each tensor (a few percent of the bytes) where a sample can; "
    "the full pass runs only when it does not.",
)
@network_option
def compare_command(
    suspect: str,
    references: tuple[str, ...],
    component: str | None,
    json_path: Path | None,
    html_path: Path | None,
    markdown_path: Path | None,
    explain: bool,
    device: str | None,
    fast: bool,
    allow_network: bool,
) -> None:
    """Compare SUSPECT with one or more REFERENCES, component by component."""
    if fast:
        one_blas_thread()  # before numpy loads
    from ..compare import compare
    from ..evidence.backend import use_device
    from ..report.progress import StreamProgress
    from ..report.terminal import render_compare

    check_output_paths(json=json_path, html=html_path, markdown=markdown_path)
    out = console()
    with use_device(device), StreamProgress(out) as progress:
        report = compare(
            suspect,
            list(references),
            component=component,
            progress=progress,
            allow_network=allow_network,
            fast=fast,
        )
    render_compare(report, out, explain=explain)
    for path in write_reports(report, json_path=json_path, html_path=html_path, markdown_path=markdown_path):
        click.echo(f"written: {path}")


def write_reports(
    report, *, json_path: Path | None, html_path: Path | None, markdown_path: Path | None
) -> list[Path]:
    """Write each requested report file, all or none; returns the paths written."""
    jobs: list[tuple[Path, Callable[..., object]]] = []
    if json_path is not None:
        from ..report.json_report import write_json

        jobs.append((json_path, write_json))
    if html_path is not None:
        from ..report.html import write_html

        jobs.append((html_path, write_html))
    if markdown_path is not None:
        from ..report.markdown import write_markdown

        jobs.append((markdown_path, write_markdown))
    return write_staged(report, jobs)


def write_staged(report, jobs: list[tuple[Path, Callable[..., object]]]) -> list[Path]:
    """Run each ``(path, writer)`` job on ``report``, all or none; returns the paths written.

    Each report is first written to a temporary file beside its destination; only when every one is
    complete are they renamed into place. A failure (say the HTML template breaks after the JSON was
    written) so leaves no new report behind and no earlier one replaced.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in jobs:
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
                os.close(fd)
                staged.append((Path(tmp), path))
                write(report, tmp)
            except OSError as exc:  # name the report, not the temporary file (disk full, permissions)
                raise ScratchcheckError(path, f"cannot write the report: {exc.strerror or exc}") from None
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    return [path for path, _ in jobs]
