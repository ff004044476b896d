"""``scratchcheck demo``: build the bundled example, compare it, and say where the reports are."""

from __future__ import annotations

from pathlib import Path

import click

from .compare_cmd import write_reports
from .options import console


@click.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("scratchcheck-demo"),
    show_default=True,
    help="Folder for the example models and reports.",
)
def demo_command(out_dir: Path) -> None:
    """Build small example models (no network) and run the comparisons on them."""
    from ..compare import compare
    from ..demo import build_demo
    from ..report.terminal import render_compare

    out = console()
    cases = build_demo(out_dir / "models")
    reports_dir = out_dir / "reports"
    reports_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for case in cases:
        out.rule(f"[bold]{case.question}")
        report = compare(case.suspect, [case.reference])
        render_compare(report, out)
        written += write_reports(
            report,
            json_path=reports_dir / f"{case.name}.json",
            html_path=reports_dir / f"{case.name}.html",
            markdown_path=reports_dir / f"{case.name}.md",
        )
    out.rule("[bold]Where the outputs are")
    out.print(f"models:  {out_dir / 'models'}")
    for path in written:
        out.print(f"report:  {path}")
