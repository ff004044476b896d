"""Options and helpers shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import NotFoundError

if TYPE_CHECKING:
    from rich.console import Console

network_option = click.option(
    "--allow-network",
    is_flag=True,
    help="Let a Hugging Face model id be downloaded when it is not in the local cache.",
)


def console() -> Console:
    from rich.console import Console  # only a command that prints pays for rich

    return Console(highlight=False)


def check_output_paths(**paths: Path | None) -> None:
    """Fail before any work when a report could not be written: its folder is missing or a file."""
    for option, path in paths.items():
        if path is None:
            continue
        folder = path.parent
        if not folder.is_dir():
            raise NotFoundError(folder, f"no such folder to write the --{option} report {path.name} into")
