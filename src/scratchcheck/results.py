"""Frozen records of every result, and their JSON form (schema ``scratchcheck.compare/1.1``).

These are the contract between the pipeline and the reports: the JSON keys named in the schema file
(``report/compare.schema.json``) must stay stable. New fields are added with defaults, never renamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

SCHEMA = "scratchcheck.compare/1.1"

# Verdicts, strongest relationship first.
VERDICTS = ("identical", "derived", "inconclusive", "independent", "not_comparable")
# What each parameter of the suspect is, in the shares: a group's verdict, not compared at all, or
# fixed (a computed table or constant recognised as not learned: neither original nor borrowed).
# A reference that is a registry entry is named by this prefix and its registry name.
REGISTRY_PREFIX = "registry:"
SHARE_KEYS = ("identical", "derived", "inconclusive", "independent", "not_compared", "fixed")


@dataclass(frozen=True)
class ComponentSummary:
    """One part of a model (vision tower, language model, ...) and its size."""

    name: str
    kind: str  # vision | audio | projector | language_model | embeddings | head | extra | other
    params: int
    share: float  # of the model's parameters
    tensors: int


@dataclass(frozen=True)
class ModelSummary:
    path: str
    format: str
    params: int
    tensors: int
    components: list[ComponentSummary] = field(default_factory=list)


@dataclass(frozen=True)
class TestResult:
    """One statistical test: what it measured, against which null, and how surprising it was."""

    name: str  # e.g. "coordinate-shuffle", "layer-diagonal", "unit-matching-identity", "fisher"
    statistic: float
    p_value: float | None
    null: str  # a sentence: what the null hypothesis is and how its distribution is known
    n: int = 0  # values, tensors or units the test used
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorComparison:
    """One suspect tensor paired with one reference tensor, and every number measured on the pair."""

    suspect: str
    reference: str
    reference_model: str
    suspect_component: str
    reference_component: str
    role: str
    layer: int | None
    reference_layer: int | None
    shape: list[int]
    numel: int
    paired_by: str  # name | role | content
    learned: bool
    excluded_reason: str | None = None
    cosine: float | None = None
    pearson: float | None = None
    rel_l2: float | None = None
    max_abs_diff: float | None = None
    frac_equal: float | None = None
    bit_identical: bool | None = None
    spearman: float | None = None
    p_value: float | None = None  # coordinate-shuffle test of pearson
    delta_rel_scale: float | None = None  # ||a - b|| / ||b||, the same as rel_l2
    delta_corr: float | None = None  # corr(a - b, b): ~0 for a noised copy
    delta_kurtosis: float | None = None  # ~3 for Gaussian noise
    # What marks a near-identical pair's difference as rounding: "float grid" | "integer grid" |
    # "float rounding"; None when there is no such trace (an edit) or the pair is not near-identical.
    conversion_trace: str | None = None
    raw_cosine_uninformative: bool = False  # raw cosine is high for any two tensors like these
    transform: str = ""  # layout normalisation applied, e.g. "split qkv [q]", "transposed"


@dataclass(frozen=True)
class NotComparable:
    suspect: str
    reference: str
    reason: str
    numel: int = 0


@dataclass(frozen=True)
class LayerMatrix:
    """The i x j similarity of one role across layers, and the layer map read from it."""

    component: str
    role: str
    suspect_layers: list[int]
    reference_layers: list[int]
    values: list[list[float | None]]
    metric: str = "pearson"
    layer_map: str = "none"  # identity | offset | stride | none
    mapping: list[list[int]] = field(default_factory=list)  # [suspect_layer, reference_layer] pairs
    p_value: float | None = None


@dataclass(frozen=True)
class Coverage:
    """How much of each model one reference comparison actually looked at."""

    reference: str
    suspect_params_compared: int
    suspect_params_total: int
    reference_params_compared: int
    reference_params_total: int
    unpaired_suspect: list[str] = field(default_factory=list)
    unpaired_reference: list[str] = field(default_factory=list)
    not_comparable: list[NotComparable] = field(default_factory=list)
    excluded: list[list[str]] = field(default_factory=list)  # [tensor, reason] for non-learned tensors

    @property
    def suspect_share(self) -> float:
        return self.suspect_params_compared / self.suspect_params_total if self.suspect_params_total else 0.0

    @property
    def reference_share(self) -> float:
        return (
            self.reference_params_compared / self.reference_params_total
            if self.reference_params_total
            else 0.0
        )


@dataclass(frozen=True)
class ProvenanceGroup:
    """One layer (or the embeddings, head, norms as groups) of a component, tested on its own."""

    group: str  # "layer 3", "embeddings", "head", "norms", "other"
    layers: list[int]
    verdict: str  # identical | derived | inconclusive | independent | not_compared
    params: int  # suspect parameters of the group's compared tensors
    share: float  # of the suspect model's parameters
    pearson: float | None  # median over the group's tensors
    p_value: float | None  # Holm-adjusted across the component's groups
    tensors: int


@dataclass(frozen=True)
class ComponentComparison:
    """The verdict for one suspect component against one reference component."""

    suspect_component: str
    component_kind: str
    reference: str
    reference_component: str | None
    verdict: str
    kind: (
        str | None
    )  # kind of derivation: fine-tuned | noised | quantised | permuted | pruned | layer-dropped | copied
    p_value: float | None
    params: int  # parameters of the suspect component
    share: float  # of the suspect model's parameters
    coverage: float  # share of the component's parameters that were actually compared
    pearson: float | None  # median Pearson over learned, compared tensors
    params_compared: int = 0
    tensors_compared: int = 0
    power: float | None = None  # smallest |r| the tests would have detected
    margin: float | None = None  # over the runner-up reference, when several were given
    runner_up: str | None = None
    tests: list[TestResult] = field(default_factory=list)
    layer_matrices: list[LayerMatrix] = field(default_factory=list)
    not_comparable: list[NotComparable] = field(default_factory=list)
    unpaired_suspect: list[str] = field(default_factory=list)
    unpaired_reference: list[str] = field(default_factory=list)
    explanation: str = ""
    provenance: list[ProvenanceGroup] = field(default_factory=list)
    # Share of the suspect model's parameters under each key of SHARE_KEYS, from the groups.
    shares: dict[str, float] = field(default_factory=dict)
    # Signs of a transformation the tests cannot see; an 'independent' is then 'inconclusive'.
    blind_spots: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComparisonReport:
    schema: str
    verdict: str
    suspect: ModelSummary
    references: list[ModelSummary]
    components: list[ComponentComparison]
    tensors: list[TensorComparison]
    warnings: list[str] = field(default_factory=list)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)  # reference -> verdict -> share
    # reference -> the metadata channel's comparison (scratchcheck.metadata.compare_metadata().to_dict())
    metadata: dict[str, Any] | None = None
    version: str = ""
    coverage: list[Coverage] = field(default_factory=list)  # one per reference
    # SHARE_KEYS -> share of the suspect's parameters, summed over the groups of every component's
    # best reference (each parameter counted once; components not compared count as not_compared).
    share_by_verdict: dict[str, float] = field(default_factory=dict)
    headline: str = ""  # e.g. "partially derived: 46% of parameters from X"
    # Set when a side was a fingerprint: which sides, elements kept, the power the sampling costs.
    sampled: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def to_jsonable(value: Any) -> Any:
    """Dataclasses to dicts, with NaN and infinities as None (JSON has neither)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return to_jsonable(value.item())
    return value


def report_from_dict(data: dict[str, Any]) -> ComparisonReport:
    """Rebuild a report from its JSON form (e.g. to render HTML from a saved JSON file)."""

    def build(cls: type, raw: dict[str, Any]) -> Any:
        kwargs = {}
        for f in fields(cls):
            if f.name not in raw:
                continue
            kwargs[f.name] = raw[f.name]
        return cls(**kwargs)

    components = []
    for raw in data["components"]:
        comp = dict(raw)
        comp["tests"] = [build(TestResult, t) for t in raw.get("tests", [])]
        comp["layer_matrices"] = [build(LayerMatrix, m) for m in raw.get("layer_matrices", [])]
        comp["not_comparable"] = [build(NotComparable, n) for n in raw.get("not_comparable", [])]
        comp["provenance"] = [build(ProvenanceGroup, g) for g in raw.get("provenance", [])]
        components.append(build(ComponentComparison, comp))

    def model(raw: dict[str, Any]) -> ModelSummary:
        summary = dict(raw)
        summary["components"] = [build(ComponentSummary, c) for c in raw.get("components", [])]
        return build(ModelSummary, summary)

    report = dict(data)
    report["suspect"] = model(data["suspect"])
    report["references"] = [model(r) for r in data["references"]]
    report["components"] = components
    report["tensors"] = [build(TensorComparison, t) for t in data["tensors"]]
    report["coverage"] = [
        build(
            Coverage, {**c, "not_comparable": [build(NotComparable, n) for n in c.get("not_comparable", [])]}
        )
        for c in data.get("coverage", [])
    ]
    return build(ComparisonReport, report)


__all__ = [
    "SCHEMA",
    "SHARE_KEYS",
    "VERDICTS",
    "ComparisonReport",
    "ComponentComparison",
    "ComponentSummary",
    "Coverage",
    "LayerMatrix",
    "ModelSummary",
    "NotComparable",
    "ProvenanceGroup",
    "TensorComparison",
    "TestResult",
    "report_from_dict",
    "to_jsonable",
]
