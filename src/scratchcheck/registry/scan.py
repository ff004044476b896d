"""Scan: which registered model is each component of a suspect from?

Three stages. First ``candidates``: the entries sharing a normalised tensor shape with the suspect,
the only ones the full test can relate to it. Then ``screen``: the candidates' stored sketches
against the suspect's, all at once; an entry goes on when any of its statistics is beyond a level
far more lenient than the full test's. Last the full test: ``compare`` of the suspect's fingerprint
with each kept entry's (and with the best of those the screen dropped, ``RUNNERS_UP``, so that a
finding's margin and a "no known source" are measured by the full test), the same tests and
verdict rules as ``scratchcheck compare``.

Multiple testing spans the whole registry: the unadjusted p of every (suspect component, entry) is
Holm-adjusted over components x registry entries, the entries the filter left out counting as p = 1,
so the bar rises with the registry's size. A component's sources are ranked (identical first, then
by Pearson); a source that is related to a nearer one (a declared ancestor, or found related by
comparing the two registered fingerprints) is reported as reached through it, not as a rival. When
nothing is found the result says so, with the smallest |r| the tests would have detected.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from itertools import chain

from .. import __version__
from ..arch import layout
from ..evidence import stats
from ..evidence.thresholds import ALPHA_DERIVED
from ..io import Checkpoint
from ..results import ComparisonReport, ComponentComparison
from .candidates import shape_keys
from .index import Progress
from .scan_results import SCAN_SCHEMA, ComponentScan, ScanReport, SourceMatch
from .screen import Block, detectable_r, screen, sketch_file, sketch_fingerprint
from .store import Entry, Registry

FOUND = ("identical", "derived")
RUNNERS_UP = 1  # entries the screen dropped that still get the full test: the closest by the screen
_LN10 = math.log(10.0)


def scan(
    suspect: str | os.PathLike[str] | Checkpoint,
    registry: Registry,
    *,
    top: int = 5,
    allow_network: bool = False,
    progress: Progress | None = None,
) -> ScanReport:
    """Rank, per suspect component, the registered models it is identical to or derived from."""
    from ..compare import compare
    from ..fingerprint import open_fingerprint

    with ExitStack() as stack:
        opened, fingerprinted = open_fingerprinted(suspect, stack, allow_network)
        selected = select(fingerprinted, registry)
        candidates, tested, sketches = selected.candidates, selected.tested, selected.sketches
        reports: dict[str, ComparisonReport] = {}
        if progress is not None:
            progress.start(len(tested), f"testing {len(tested)} of {len(candidates)} candidate(s)")
        for entry in tested:
            with open_fingerprint(registry.fingerprint_path(entry), trusted=True) as reference:
                reports[entry.name] = compare(fingerprinted, [reference])
            if progress is not None:
                progress.advance(entry.name)
        suspect_path = str(opened.path)
        parts = layout(fingerprinted).components
    total = sum(c.params for c in parts) or 1
    components = _judge(
        [(c.name, c.kind, c.params, c.params / total) for c in parts], reports, registry, top, sketches
    )
    return ScanReport(
        schema=SCAN_SCHEMA,
        suspect=suspect_path,
        registry=str(registry.path),
        registry_size=registry.count(),
        candidates=len(candidates),
        screened=selected.kept,
        alpha=ALPHA_DERIVED,
        components=components,
        version=__version__,
    )


def open_fingerprinted(
    suspect: str | os.PathLike[str] | Checkpoint, stack: ExitStack, allow_network: bool
) -> tuple[Checkpoint, Checkpoint]:
    """The suspect opened (closed with ``stack``), and as a fingerprint: itself if it is one, else
    fingerprinted in memory so that it compares with the registry's position by position."""
    from ..fingerprint import open_source, sampled_copy

    opened = open_source(suspect, stack, allow_network=allow_network)
    if opened.format == "fingerprint":
        return opened, opened
    return opened, stack.enter_context(sampled_copy(opened))


@dataclass(frozen=True)
class Selection:
    """What the stages before the full test leave: the entries sharing a tensor shape with the
    suspect, those the full test runs on (kept by the screen, and the closest it dropped), how many
    the screen kept, and the suspect's sketches."""

    candidates: list[Entry]
    tested: list[Entry]
    kept: int
    sketches: dict[str, Block]


def select(fingerprinted: Checkpoint, registry: Registry) -> Selection:
    """The shape filter and the screen, for a suspect already fingerprinted."""
    candidates = registry.sharing_shapes(shape_keys(fingerprinted))
    made = sketch_missing(registry)
    sketches = sketch_fingerprint(fingerprinted)
    rows: Iterable[tuple[str, str, str, bytes]] = registry.sketches_sharing(sketches)
    if made:  # a read-only registry: the stored rows of these entries are missing or outdated
        rows = chain((row for row in rows if row[0] not in made), _sketch_rows(made, sketches))
    screened = screen(sketches, rows)
    kept = [s.name for s in screened if s.kept]
    chosen = set(kept + [s.name for s in screened if not s.kept][:RUNNERS_UP])
    return Selection(candidates, [e for e in candidates if e.name in chosen], len(kept), sketches)


def _judge(
    parts: list[tuple[str, str, int, float]],
    reports: dict[str, ComparisonReport],
    registry: Registry,
    top: int,
    sketches: dict[str, Block],
) -> list[ComponentScan]:
    """Per suspect component (name, kind, params, share): its sources after the registry-wide Holm."""
    rows = [(name, c) for name, report in reports.items() for c in report.components]
    family = max(registry.count(), 1) * max(len(parts), 1)
    log_ps = [_raw_log_p(c) for _, c in rows]
    # Entries the filter left out are tests with p = 1: they count in the family, never rejected.
    adjusted = stats.holm(log_ps + [0.0] * max(family - len(rows), 0))[: len(rows)]
    per_component: dict[str, list[SourceMatch]] = {name: [] for name, *_ in parts}
    for (name, comp), log_p in zip(rows, adjusted, strict=True):
        per_component.setdefault(comp.suspect_component, []).append(_match(name, comp, log_p))
    lineage = _Lineage(registry)
    out = []
    for component, kind, params, share in parts:
        matches = per_component[component]
        ranked = sorted(matches, key=_rank)
        found = [m for m in ranked if m.verdict in FOUND]
        sources, behind = _nearest_first(found, lineage)
        others = [m for m in ranked if m.entry != (sources[0].entry if sources else None)]
        runner = others[0] if others else None
        lead = sources[0] if sources else None
        margin = (
            lead.pearson - runner.pearson
            if lead and runner and lead.pearson is not None and runner.pearson is not None
            else None
        )
        out.append(
            ComponentScan(
                component=component,
                kind=kind,
                params=params,
                share=share,
                verdict=(lead.verdict if lead else "no_known_source"),
                sources=sources[:top],
                behind=behind,
                runner_up=runner.entry if runner and lead else None,
                margin=margin,
                power=_power(reports, component, family, detectable_r(sketches, kind)),
                compared=len(matches),
                best_independent=None if lead else (ranked[0] if ranked else None),
            )
        )
    return out


def _raw_log_p(comp: ComponentComparison) -> float:
    """The component's combined p before compare's own Holm step (the scan adjusts over the registry)."""
    for test in comp.tests:
        if test.name == "combined" and test.detail.get("log10_p_unadjusted") is not None:
            return float(test.detail["log10_p_unadjusted"]) * _LN10
    return 0.0


def _match(name: str, comp: ComponentComparison, log_p: float) -> SourceMatch:
    """Found when ``compare``'s own rules say identical, or derived (its rules: spread evidence, no
    blind spot) and the p adjusted over the whole registry still clears the bar."""
    if comp.verdict == "identical":
        verdict = "identical"
    elif comp.verdict == "derived" and math.isfinite(log_p) and log_p < math.log(ALPHA_DERIVED):
        verdict = "derived"
    else:
        verdict = "not_found"
    return SourceMatch(
        entry=name,
        reference_component=comp.reference_component,
        verdict=verdict,
        kind=comp.kind if verdict in FOUND else None,
        p_value=stats.p_of(log_p) if math.isfinite(log_p) else None,
        log10_p=stats.log10_p(log_p) if math.isfinite(log_p) else None,
        pearson=comp.pearson,
        coverage=comp.coverage,
    )


def _rank(m: SourceMatch) -> tuple[int, float, float]:
    return (
        0 if m.verdict == "identical" else 1 if m.verdict == "derived" else 2,
        -(m.pearson if m.pearson is not None else -2.0),
        m.log10_p if m.log10_p is not None else 0.0,
    )


def _nearest_first(
    found: list[SourceMatch], lineage: _Lineage
) -> tuple[list[SourceMatch], list[SourceMatch]]:
    """Sources in rank order, minus those reached through a nearer one (returned apart)."""
    sources: list[SourceMatch] = []
    behind: list[SourceMatch] = []
    for match in found:
        nearer = next(((s, how) for s in sources if (how := lineage.relation(s, match.entry))), None)
        if nearer is None:
            sources.append(match)
        else:
            behind.append(replace(match, through=nearer[0].entry, relation=nearer[1]))
    return sources, behind


class _Lineage:
    """How two registered models are related: a declared ancestor, or related by their weights.

    The weights show that two fingerprints are related, not which way: a sibling (two fine-tunes of
    one base) and an ancestor look alike, so only a declared lineage earns the word "ancestor"."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._found: dict[tuple[str, str], set[str | None]] = {}

    def relation(self, nearer: SourceMatch, other: str) -> str | None:
        if other in _declared_ancestors(nearer.entry, self.registry):
            return "ancestor"
        if nearer.reference_component in self._related_components(nearer.entry, other):
            return "related"
        return None

    def _related_components(self, child: str, other: str) -> set[str | None]:
        """Components of ``child`` found identical to or derived from ``other`` (compared once)."""
        if (child, other) not in self._found:
            from ..compare import compare
            from ..fingerprint import open_fingerprint

            path = self.registry.fingerprint_path
            with (
                open_fingerprint(path(self.registry.get(child)), trusted=True) as c,
                open_fingerprint(path(self.registry.get(other)), trusted=True) as o,
            ):
                report = compare(c, [o])
            self._found[(child, other)] = {
                x.suspect_component for x in report.components if x.verdict in FOUND
            }
        return self._found[(child, other)]


def _declared_ancestors(name: str, registry: Registry) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        entry: Entry | None = registry.find_name(todo.pop())
        for parent in entry.parents if entry else []:
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def sketch_missing(registry: Registry) -> dict[str, dict[str, Block]]:
    """Give the screen's sketches to entries registered without them (before schema 3): the
    migration's second half, computed from the stored fingerprint files, once. A read-only
    registry cannot keep them: they are returned, by entry, for this scan alone."""
    made = {}
    for entry in registry.unsketched():
        found = sketch_file(registry.fingerprint_path(entry))
        if registry.read_only:
            made[entry.name] = found
        else:
            registry.set_sketches(entry.name, {key: block.encode() for key, block in found.items()})
    return made


def _sketch_rows(
    made: dict[str, dict[str, Block]], wanted: Iterable[str]
) -> Iterator[tuple[str, str, str, bytes]]:
    """``made`` as the store's rows (name, key, labels, data) of the keys in ``wanted``, by key."""
    for key in sorted(set(wanted)):
        for name, blocks in made.items():
            if key in blocks:
                yield (name, key, *blocks[key].encode())


def _power(
    reports: dict[str, ComparisonReport], component: str, family: int, screen_r: float | None
) -> float | None:
    """The smallest common |r| both stages would have passed: the coordinate tests at the
    registry-wide level, on the largest set of tensors any tested entry let us compare, and the
    screen's aligned statistic on the suspect's sketches (None if nothing was comparable)."""
    best: list[int] = []
    for report in reports.values():
        sizes = [
            t.numel
            for t in report.tensors
            if t.suspect_component == component and t.learned and t.pearson is not None
        ]
        if sum(sizes) > sum(best):
            best = sizes
    if not best:
        return None
    r = stats.detectable_r(best, [1.0] * len(best), ALPHA_DERIVED / family)
    if not math.isfinite(r):
        return None
    return max(r, screen_r) if screen_r is not None else r
