"""The registry's terminal views: the list of entries, one entry, and a batch's outcome."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..registry.index import IndexSummary
from ..registry.store import Entry
from . import fmt

LIST_SCHEMA = "scratchcheck.registry-list/1"


def entries_json(entries: list[Entry], failures: dict[str, str]) -> dict[str, Any]:
    """``registry list --json``: every entry's metadata, as the bundle index stores it, and the
    sources whose indexing failed (source -> error)."""
    return {"schema": LIST_SCHEMA, "entries": [asdict(e) for e in entries], "failures": failures}


def render_entries(entries: list[Entry], failures: dict[str, str], console: Console) -> None:
    for source, error in failures.items():
        console.print(Text(f"not indexed: {source}: {error}", style="red"))
    if not entries:
        console.print(
            "The registry is empty: add models with `scratchcheck registry add` or `scratchcheck index`."
        )
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("name", "params", "licence", "source", "added", "parents"):
        table.add_column(column, justify="right" if column == "params" else "left", overflow="fold")
    for e in entries:
        table.add_row(
            e.name, fmt.params(e.params), e.license or "", e.source, e.added[:10], ", ".join(e.parents)
        )
    console.print(table)
    console.print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}")


def render_entry(entry: Entry, fingerprint: str, console: Console) -> None:
    rows = [
        ("name", entry.name),
        ("source", entry.source + (f"@{entry.revision}" if entry.revision else "")),
        ("licence", entry.license or "not stated"),
        ("added", entry.added),
        ("declared parents", ", ".join(entry.parents) or "none"),
        ("parameters", f"{fmt.params(entry.params)} ({entry.params:,})"),
        ("fingerprint", f"{fingerprint} ({entry.size:,} bytes)"),
        ("sha256", entry.content_hash),
        ("weights sha256", entry.model_hash or "n/a"),
    ]
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


def render_index_summary(summary: IndexSummary, console: Console) -> None:
    parts = [
        f"{len(summary.added)} added",
        f"{len(summary.skipped)} already indexed",
        f"{len(summary.duplicates)} duplicate content",
        f"{len(summary.failed)} failed",
    ]
    console.print(", ".join(parts))
    for source, entry in summary.duplicates:
        console.print(Text(f"  duplicate: {source} has the content of {entry}", style="dim"))
    for source, error in summary.failed.items():
        console.print(Text(f"  failed: {source}: {error}", style="red"))
