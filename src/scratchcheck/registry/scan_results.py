"""The records a scan produces, and their JSON form (schema ``scratchcheck.scan/1``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..results import to_jsonable

SCAN_SCHEMA = "scratchcheck.scan/1"


@dataclass(frozen=True)
class SourceMatch:
    """One registered model against one suspect component, after the registry-wide adjustment."""

    entry: str  # registry name
    reference_component: str | None
    verdict: str  # identical | derived | not_found
    kind: str | None  # kind of derivation, when found
    p_value: float | None  # Holm-adjusted over components x registry entries
    log10_p: float | None
    pearson: float | None  # median Pearson over the compared tensors
    coverage: float  # share of the component's parameters compared
    through: str | None = None  # when reached through a nearer source: that source
    relation: str | None = None  # then: "ancestor" (declared lineage) or "related" (weights only)


@dataclass(frozen=True)
class ComponentScan:
    component: str
    kind: str
    params: int
    share: float  # of the suspect's parameters
    verdict: str  # identical | derived (the nearest source's) | no_known_source
    sources: list[SourceMatch] = field(default_factory=list)  # nearest first, at most --top
    behind: list[SourceMatch] = field(default_factory=list)  # found, but reached through a nearer source
    runner_up: str | None = None  # the best other entry compared
    margin: float | None = None  # Pearson of the nearest source minus the runner-up's
    power: float | None = None  # smallest |r| the tests would have detected, registry-wide
    compared: int = 0  # entries that reached the full test for this component
    best_independent: SourceMatch | None = None  # when nothing was found: the closest entry


@dataclass(frozen=True)
class ScanReport:
    schema: str
    suspect: str
    registry: str
    registry_size: int
    candidates: int  # entries that passed the shape filter
    screened: int  # candidates the screen kept (the full test also runs on scan.RUNNERS_UP others)
    alpha: float  # family-wise level of a "derived" finding
    components: list[ComponentScan]
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)
