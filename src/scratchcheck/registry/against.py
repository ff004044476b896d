"""A suspect compared with a whole registry at once, as one ``ComparisonReport`` (what ``audit
--registry`` judges).

The references are the registered models that share a normalised tensor shape with the suspect (the
scan's filter: an entry sharing none has nothing the tests could compare). Each is named
``registry:NAME``. Multiple testing spans the whole registry: the entries left out count as tests
with p = 1, so the bar rises with the registry's size as it does in ``scan``. An entry's recorded
licence stands in for the licence of its files when its fingerprint carries none.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..arch import layout
from ..compare import Progress
from ..io import Checkpoint
from ..results import REGISTRY_PREFIX, ComparisonReport
from .store import Entry, Registry


@dataclass(frozen=True)
class RegistrySearch:
    """Which registry a comparison searched: its entries, how many shared a tensor shape with the
    suspect, and how many of those the screen passed on to the full test (``compared``, the closest
    one it dropped included); the others count as tests with p = 1."""

    path: str
    entries: int
    candidates: int
    compared: int


def compare_with_registry(
    suspect: str | os.PathLike[str] | Checkpoint,
    registry: Registry,
    *,
    allow_network: bool = False,
    progress: Progress | None = None,
) -> tuple[ComparisonReport, RegistrySearch]:
    """``compare`` of ``suspect`` (a model or fingerprint) with every registered model it could be
    from: the entries ``scan`` would test in full (``scan.select``), as references of one comparison."""
    from ..compare import compare
    from ..fingerprint.format import as_checkpoint, read
    from .scan import open_fingerprinted, select

    with ExitStack() as stack:
        _, fingerprinted = open_fingerprinted(suspect, stack, allow_network)
        selected = select(fingerprinted, registry)
        references = [
            stack.enter_context(
                as_checkpoint(
                    read(registry.fingerprint_path(e), trusted=True), Path(REGISTRY_PREFIX + e.name)
                )
            )
            for e in selected.tested
        ]
        components = len(layout(fingerprinted).components)
        left_out = (registry.count() - len(selected.tested)) * components
        report = compare(fingerprinted, references, progress=progress, untested=left_out)
    search = RegistrySearch(
        str(registry.path), registry.count(), len(selected.candidates), len(selected.tested)
    )
    return _with_registry_licences(report, selected.tested), search


def _with_registry_licences(report: ComparisonReport, entries: list[Entry]) -> ComparisonReport:
    """The report, with each entry's recorded licence as a metadata finding where its files name none."""
    licences = {REGISTRY_PREFIX + e.name: e.license for e in entries if e.license}
    metadata: dict[str, Any] = {}
    for reference, found in (report.metadata or {}).items():
        theirs = dict(found.get("reference") or {})
        if not theirs.get("licences") and reference in licences:
            recorded = licences[reference]
            theirs["licences"] = [
                {
                    "file": "(registry entry)",
                    "licence": recorded,
                    "family": None,
                    "evidence": "recorded when indexed",
                }
            ]
        metadata[reference] = {**found, "reference": theirs}
    return replace(report, metadata=metadata)
