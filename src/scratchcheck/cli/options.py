"""Options and helpers shared by the commands."""

from __future__ import annotations

import click
from rich.console import Console

network_option = click.option(
    "--allow-network",
    is_flag=True,
    help="Let a Hugging Face model id be downloaded when it is not in the local cache.",
)


def console() -> Console:
    return Console(highlight=False)
