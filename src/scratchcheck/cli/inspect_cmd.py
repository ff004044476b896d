"""``scratchcheck inspect MODEL``: what a checkpoint holds, from headers alone."""

from __future__ import annotations

from pathlib import Path

import click

from .options import check_output_paths, console, network_option


@click.command("inspect")
@click.argument("model")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the result as JSON.",
)
@network_option
def inspect_command(model: str, json_path: Path | None, allow_network: bool) -> None:
    """Summarise MODEL (a file, folder, shard index or Hugging Face id): format, parameters, components."""
    from ..inspection import inspect_model
    from ..report.terminal import render_inspect

    check_output_paths(json=json_path)
    result = inspect_model(model, allow_network=allow_network)
    render_inspect(result, console())
    if json_path is not None:
        from ..report.json_report import write_json

        write_json(result, json_path)
        click.echo(f"JSON written to {json_path}")
