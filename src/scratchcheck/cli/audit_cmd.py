"""``scratchcheck audit SUSPECT --against REF... | --registry [PATH]``: PASS / FAIL / UNDETERMINED per rule of a policy.

The exit status gates a release pipeline: 0 pass, 1 fail, 3 undetermined, 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError
from .compare_cmd import write_staged
from .options import check_output_paths, console, network_option
from .registry_cmd import open_registry

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command("audit")
@click.argument("suspect")
@click.option(
    "--policy",
    default="strict",
    show_default=True,
    help="A shipped preset (strict, declared-borrowing) or a policy file (.toml).",
)
@click.option("--against", "references", multiple=True, metavar="REF", help="A reference model (repeatable).")
@click.option(
    "--registry",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help="Audit against every model in a fingerprint registry (default: the user registry).",
)
@click.option("--json", "json_path", type=_OUT, help="Write the audit as JSON (schema scratchcheck.audit/1).")
@click.option("--html", "html_path", type=_OUT, help="Write a self-contained HTML page.")
@click.option("--markdown", "markdown_path", type=_OUT, help="Write a Markdown summary.")
@network_option
def audit_command(
    suspect: str,
    policy: str,
    references: tuple[str, ...],
    registry: str | None,
    json_path: Path | None,
    html_path: Path | None,
    markdown_path: Path | None,
    allow_network: bool,
) -> None:
    """Audit SUSPECT against a from-scratch POLICY: exit 0 pass, 1 fail, 3 undetermined, 2 error."""
    from ..audit import audit, load_policy
    from ..compare import compare
    from ..report.audit_terminal import render_audit
    from ..report.progress import StreamProgress

    if registry is not None and references:
        raise UsageError(None, "audit against --against REF or against --registry, not both")
    if registry is None and not references:
        raise UsageError(
            None, "give the models to audit against with --against REF (one or more) or --registry"
        )
    rules = load_policy(policy)  # a bad policy fails before any model is read
    check_output_paths(json=json_path, html=html_path, markdown=markdown_path)
    out = console()
    searched = None
    with StreamProgress(out) as progress:
        if registry is None:
            report = compare(suspect, list(references), progress=progress, allow_network=allow_network)
        else:
            from ..registry.against import compare_with_registry

            with open_registry(Path(registry) if registry else None, create=False) as store:
                report, searched = compare_with_registry(
                    suspect, store, progress=progress, allow_network=allow_network
                )
    result = audit(report, rules, searched)
    render_audit(result, out)
    jobs = []
    if json_path is not None:
        from ..report.json_report import write_json

        jobs.append((json_path, write_json))
    if html_path is not None:
        from ..report.audit_html import write_audit_html

        jobs.append((html_path, write_audit_html))
    if markdown_path is not None:
        from ..report.audit_markdown import write_audit_markdown

        jobs.append((markdown_path, write_audit_markdown))
    for path in write_staged(result, jobs):
        click.echo(f"written: {path}")
    sys.exit(result.exit_code)
