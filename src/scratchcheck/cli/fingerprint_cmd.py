"""``scratchcheck fingerprint MODEL`` and ``scratchcheck verify MODEL FILE.scfp``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import check_output_paths, console, network_option

EXIT_MISMATCH = 1


@click.command("fingerprint")
@click.argument("model")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the fingerprint (default: ./<model name>.scfp).",
)
@click.option(
    "--hash", "full_hash", is_flag=True, help="Also hash every stored byte (reads the whole model)."
)
@network_option
def fingerprint_command(model: str, output: Path | None, full_hash: bool, allow_network: bool) -> None:
    """Write a fingerprint of MODEL (a path, Hugging Face id, hf://org/name[@rev] or https://…safetensors)."""
    from ..fingerprint import SUFFIX, fingerprint
    from ..report.progress import StreamProgress

    output = output or Path(_stem(model) + SUFFIX)
    check_output_paths(output=output)
    with StreamProgress(console()) as progress:
        fp = fingerprint(model, output, full_hash=full_hash, allow_network=allow_network, progress=progress)
    reads = fp.header["reads"]
    fetched = f", {reads['bytes_fetched']:,} bytes fetched over HTTP" if "bytes_fetched" in reads else ""
    click.echo(
        f"written: {output} ({output.stat().st_size:,} bytes; read {reads['bytes_read']:,} of "
        f"{reads['bytes_total']:,} bytes, at most {reads['max_fraction_large_tensor']:.1%} of a large "
        f"tensor{fetched})"
    )


@click.command("verify")
@click.argument("model")
@click.argument("fingerprint_file", type=click.Path(dir_okay=False, path_type=Path))
@network_option
def verify_command(model: str, fingerprint_file: Path, allow_network: bool) -> None:
    """Check that MODEL holds the weights FINGERPRINT_FILE commits to; exit 1 naming the first mismatch."""
    from ..fingerprint import verify

    result = verify(model, fingerprint_file, allow_network=allow_network)
    what = "every stored byte and sampled value" if result.full_hash else "every sampled value and hash"
    if result.ok:
        click.echo(f"verified: {result.tensors_checked} tensors match {fingerprint_file} ({what})")
        return
    click.echo(f"mismatch: {result.first_mismatch}", err=True)
    sys.exit(EXIT_MISMATCH)


def _stem(model: str) -> str:
    """A file name for a model's fingerprint: its last path or id part, without a suffix."""
    name = model.rstrip("/").split("@")[0].rsplit("/", 1)[-1] or "model"
    return Path(name).stem if "." in name else name
