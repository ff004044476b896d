"""``scratchcheck registry add|list|show|remove|export|import``: the store of known fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UsageError
from .options import console, network_option

registry_option = click.option(
    "--registry",
    "registry_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The registry database (default: $XDG_CACHE_HOME/scratchcheck/registry.sqlite).",
)


def open_registry(path: Path | None, *, create: bool = True):
    from ..registry.store import Registry

    return Registry(path, create=create)


@click.group("registry")
def registry_group() -> None:
    """Known models' fingerprints: add, list, show, remove, clean, export and import them."""


@registry_group.command("add")
@click.argument("sources", nargs=-1, required=True)
@click.option("--name", help="Name of the entry (one source only; default: the folder or file name).")
@click.option("--license", "license_", help="The model's licence, e.g. apache-2.0.")
@click.option("--parent", "parents", multiple=True, help="A declared parent (registry name); repeatable.")
@registry_option
@network_option
def add_command(
    sources: tuple[str, ...],
    name: str | None,
    license_: str | None,
    parents: tuple[str, ...],
    registry_path,
    allow_network: bool,
) -> None:
    """Fingerprint each MODEL (or take each FILE.scfp) and register it."""
    from ..registry.sources import add_source

    if name is not None and len(sources) > 1:
        raise UsageError(None, "--name names one entry; give one source with it")
    with open_registry(registry_path) as registry:
        for source in sources:
            added = add_source(
                registry, source, name=name, license=license_, parents=parents, allow_network=allow_network
            )
            what = "added" if added.created else "already registered as"
            click.echo(f"{what} {added.entry.name} ({source})")


@registry_group.command("list")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the entries as JSON (scratchcheck.registry-list/1)."
)
@registry_option
def list_command(as_json: bool, registry_path) -> None:
    """List the registered models, and the sources whose indexing failed."""
    from ..report.registry_view import entries_json, render_entries

    with open_registry(registry_path) as registry:
        entries, failures = registry.entries(), registry.failures()
    if as_json:
        click.echo(json.dumps(entries_json(entries, failures), indent=2))
    else:
        render_entries(entries, failures, console())


@registry_group.command("show")
@click.argument("name")
@registry_option
def show_command(name: str, registry_path) -> None:
    """Show one entry: source, licence, parents, hashes and where its fingerprint is."""
    from ..report.registry_view import render_entry

    with open_registry(registry_path) as registry:
        entry = registry.get(name)
        render_entry(entry, str(registry.fingerprint_path(entry)), console())


@registry_group.command("remove")
@click.argument("name")
@registry_option
def remove_command(name: str, registry_path) -> None:
    """Remove one entry and its fingerprint."""
    with open_registry(registry_path) as registry:
        registry.remove(name)
    click.echo(f"removed {name}")


@registry_group.command("clean")
@registry_option
def clean_command(registry_path) -> None:
    """Delete the files killed adds left behind (no entry names them)."""
    with open_registry(registry_path, create=False) as registry:
        removed = registry.clean_orphans()
    click.echo(f"removed {len(removed)} orphaned file(s)")


@registry_group.command("export")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("names", nargs=-1)
@registry_option
def export_command(bundle: Path, names: tuple[str, ...], registry_path) -> None:
    """Write the registry (or the NAMES given) to a portable BUNDLE file."""
    from ..registry.bundle import export_bundle
    from .options import check_output_paths

    check_output_paths(bundle=bundle)
    with open_registry(registry_path) as registry:
        count = export_bundle(registry, bundle, list(names))
    click.echo(f"exported {count} entr{'y' if count == 1 else 'ies'} to {bundle}")


@registry_group.command("import")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@registry_option
def import_command(bundle: Path, registry_path) -> None:
    """Merge a BUNDLE into the registry; content already present and names taken are reported."""
    from ..registry.bundle import import_bundle

    with open_registry(registry_path) as registry:
        summary = import_bundle(registry, bundle)
    click.echo(
        f"{len(summary.added)} added, {len(summary.duplicates)} duplicate content, "
        f"{len(summary.conflicts)} name conflict(s)"
    )
    for theirs, ours in summary.duplicates:
        click.echo(f"  duplicate: {theirs} is already registered as {ours}")
    for name in summary.conflicts:
        click.echo(f"  conflict: {name} names other content here; not imported")
