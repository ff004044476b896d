"""``scratchcheck index PATHS... | --from-list FILE``: fingerprint many checkpoints and register them."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from .options import console, network_option
from .registry_cmd import open_registry, registry_option


@click.command("index")
@click.argument("paths", nargs=-1)
@click.option(
    "--from-list",
    "list_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A text file of checkpoints, one per line.",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), help="Local processes (default: one per CPU).")
@click.option("--address", help="Ray cluster address, e.g. ray://head:10001 (default: start one here).")
@registry_option
@network_option
def index_command(
    paths: tuple[str, ...],
    list_file: Path | None,
    engine: str,
    workers: int | None,
    address: str | None,
    registry_path: Path | None,
    allow_network: bool,
) -> None:
    """Fingerprint every checkpoint in PATHS (a folder of models counts as its models) and register it.

    Already-indexed checkpoints are skipped and a failure is recorded without stopping the batch,
    so an interrupted run is resumed by running it again.
    """
    from ..registry.index import index
    from ..registry.sources import expand, read_source_list
    from ..report.batch_progress import BatchProgress
    from ..report.registry_view import render_index_summary

    sources = expand(paths) + (read_source_list(list_file) if list_file else [])
    if not sources:
        raise UsageError(None, "nothing to index: give PATHS or --from-list FILE")
    out = console()
    with open_registry(registry_path) as registry, BatchProgress(out) as progress:
        summary = index(
            sources,
            registry,
            engine=engine,
            workers=workers,
            address=address,
            progress=progress,
            allow_network=allow_network,
        )
    render_index_summary(summary, out)
