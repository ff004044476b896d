"""One comparison, start to finish: read -> components -> align -> measure -> test -> verdict."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Protocol

from . import __version__
from .align import Alignment, TensorPair, align
from .arch import ModelLayout, layout
from .errors import UsageError
from .evidence.disguises import undo
from .evidence.measured import MeasuredPair, measure
from .evidence.merge import annotate as annotate_merges
from .evidence.provenance import headline, overall_verdict, share_by_verdict
from .evidence.verdict import assess, finalize
from .fingerprint.compared import sampled_sides, sampling_statement
from .io import Checkpoint
from .metadata import compare_metadata
from .results import (
    SCHEMA,
    VERDICTS,
    ComparisonReport,
    ComponentComparison,
    ComponentSummary,
    Coverage,
    ModelSummary,
    TensorComparison,
)


class Progress(Protocol):
    """Told how many bytes a reference's pairs will read, then each pair as it is measured."""

    def start(self, total_bytes: int, description: str) -> None: ...

    def advance(self, nbytes: int, label: str) -> None: ...


ModelSource = str | os.PathLike[str] | Checkpoint


def compare(
    suspect: ModelSource,
    references: ModelSource | Sequence[ModelSource],
    *,
    component: str | None = None,
    progress: Progress | None = None,
    allow_network: bool = False,
    untested: int = 0,
    fast: bool = False,
) -> ComparisonReport:
    """Compare a suspect checkpoint with one or more references, component by component.

    ``untested``: tests of the same family that were not run (a registry's entries that share no
    tensor shape with the suspect); they raise the multiple-testing bar as tests with p = 1.
    ``fast``: decide from in-memory fingerprints where a sample can, in full elsewhere (``fast``).
    One reference may be given alone rather than in a list."""
    if isinstance(references, str | os.PathLike | Checkpoint):
        references = [references]
    if fast:
        from .fast import compare_fast

        return compare_fast(
            suspect, references, component=component, progress=progress, allow_network=allow_network
        )
    with ExitStack() as stack:
        opened = [_open(source, stack, allow_network) for source in [suspect, *references]]
        sampled = sampled_sides(opened)
        s_layout = layout(opened[0])
        chosen = _chosen_components(s_layout, component)
        records: list[TensorComparison] = []
        assessments = []
        ref_summaries = []
        coverage: list[Coverage] = []
        metadata: dict[str, dict] = {}
        alignments: dict[str, Alignment] = {}
        for checkpoint in opened[1:]:
            r_layout = layout(checkpoint)
            name = str(r_layout.checkpoint.path)
            ref_summaries.append(summarise(r_layout))
            alignment = align(s_layout, r_layout, component=component)
            # Function-preserving disguises (folded gains, a rotated residual stream) are undone first.
            alignment, _ = undo(s_layout, r_layout, alignment)
            alignments[name] = alignment
            if progress is not None:
                total = sum(p.suspect.nbytes + p.reference.nbytes for p in alignment.pairs if p.learned)
                progress.start(total, f"vs {r_layout.checkpoint.path.name}")
            measured = [_measure(pair, name, progress) for pair in alignment.pairs]
            records.extend(m.record() for m in measured)
            coverage.append(measure_coverage(s_layout, r_layout, alignment, name))
            # Metadata is its own evidence channel: reported beside the weights, never mixed in.
            metadata[name] = compare_metadata(s_layout.checkpoint, r_layout.checkpoint).to_dict()
            assessments.extend(assess(s_layout, r_layout, alignment, measured, name, chosen))
        # Multiple-testing control spans every component and reference, so verdicts come last.
        suspect_params = sum(c.params for c in s_layout.components)
        candidates, warnings = finalize(assessments, suspect_params, untested)
        candidates = annotate_merges(candidates, alignments)  # derived from two references: a merge?
        components = best_per_component(candidates)
        shares = share_by_verdict(components, suspect_params)
        report = ComparisonReport(
            schema=SCHEMA,
            verdict=overall_verdict(shares),
            suspect=summarise(s_layout),
            references=ref_summaries,
            components=components,
            tensors=records,
            warnings=warnings,
            shares=shares_by_reference(candidates),
            version=__version__,
            coverage=coverage,
            metadata=metadata,
            share_by_verdict=shares,
            sampled=sampling_statement(sampled, s_layout.checkpoint, records) if sampled else None,
        )
        return replace(report, headline=headline(report))


def _chosen_components(model: ModelLayout, component: str | None) -> set[str]:
    """The suspect components ``--component`` names (by name or kind); all of them by default."""
    names = {c.name for c in model.components if component in (None, c.name, c.kind)}
    if not names:
        available = ", ".join(sorted(c.name for c in model.components))
        raise UsageError(model.checkpoint.path, f"no component {component!r}; this model has: {available}")
    return names


def _open(source: ModelSource, stack: ExitStack, allow_network: bool) -> Checkpoint:
    from .fingerprint import open_source

    return open_source(source, stack, allow_network=allow_network)


def _measure(pair: TensorPair, reference: str, progress: Progress | None) -> MeasuredPair:
    measured = measure(pair, reference)
    if progress is not None and pair.learned:
        progress.advance(pair.suspect.nbytes + pair.reference.nbytes, pair.suspect.label or pair.suspect.name)
    return measured


def summarise(model: ModelLayout) -> ModelSummary:
    checkpoint = model.checkpoint
    total = checkpoint.num_params or 1
    return ModelSummary(
        path=str(checkpoint.path),
        format=checkpoint.format,
        params=checkpoint.num_params,
        tensors=len(checkpoint.weights()),
        components=[
            ComponentSummary(c.name, c.kind, c.params, c.params / total, len(c.tensors))
            for c in model.components
        ],
    )


def measure_coverage(
    suspect: ModelLayout, reference: ModelLayout, alignment: Alignment, name: str
) -> Coverage:
    """Parameters compared on each side: learned pairs only (a stored tensor counts once, and no more
    than its views cover: rows a vocabulary added or dropped were not compared)."""
    learned = [p for p in alignment.pairs if p.learned]
    return Coverage(
        reference=name,
        suspect_params_compared=_compared(suspect.checkpoint, [p.suspect for p in learned]),
        suspect_params_total=suspect.checkpoint.num_params,
        reference_params_compared=_compared(reference.checkpoint, [p.reference for p in learned]),
        reference_params_total=reference.checkpoint.num_params,
        unpaired_suspect=list(alignment.unpaired_suspect),
        unpaired_reference=list(alignment.unpaired_reference),
        not_comparable=list(alignment.not_comparable),
        excluded=[[p.suspect.name, p.excluded_reason or ""] for p in alignment.pairs if not p.learned]
        + [list(e) for e in getattr(alignment, "excluded", [])],
    )


def _compared(checkpoint: Checkpoint, views: list) -> int:
    covered: dict[str, int] = {}
    for view in {v.key: v for v in views}.values():
        for source in view.sources:
            covered[source] = covered.get(source, 0) + view.numel // len(view.sources)
    return sum(min(n, checkpoint.info(source).numel) for source, n in covered.items())


def best_per_component(candidates: list[ComponentComparison]) -> list[ComponentComparison]:
    """Per suspect component, the reference with the strongest evidence, and its margin."""
    by_component: dict[str, list[ComponentComparison]] = {}
    for candidate in candidates:
        by_component.setdefault(candidate.suspect_component, []).append(candidate)
    best = []
    for group in by_component.values():
        ranked = sorted(group, key=_strength, reverse=True)
        top = ranked[0]
        if len(ranked) > 1 and top.pearson is not None and ranked[1].pearson is not None:
            top = replace(top, margin=top.pearson - ranked[1].pearson, runner_up=ranked[1].reference)
        best.append(top)
    return best


def _strength(c: ComponentComparison) -> tuple[int, float]:
    return (-VERDICTS.index(c.verdict), c.pearson if c.pearson is not None else -2.0)


def shares_by_reference(candidates: list[ComponentComparison]) -> dict[str, dict[str, float]]:
    shares: dict[str, dict[str, float]] = {}
    for c in candidates:
        shares.setdefault(c.reference, {}).setdefault(c.verdict, 0.0)
        shares[c.reference][c.verdict] += c.share
    return shares
