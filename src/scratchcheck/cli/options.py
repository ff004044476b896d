"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..errors import NotFoundError

network_option = click.option(
    "--allow-network",
    is_flag=True,
    help="Let a Hugging Face model id be downloaded when it is not in the local cache.",
)


def console() -> Console:
    return Console(highlight=False)


def check_output_paths(**paths: Path | None) -> None:
    """Fail before any work when a report could not be written: its folder is missing or a file."""
    for option, path in paths.items():
        if path is None:
            continue
        folder = path.parent
        if not folder.is_dir():
            raise NotFoundError(folder, f"no such folder to write the --{option} report {path.name} into")
