"""``compare --fast``: the verdict from fingerprints made in memory (a few percent of the bytes), and
the full pass only where the sample does not decide.

A sample decides a component when it shows it ``derived``: the coordinate tests on kept elements
are exact tests on those elements (docs/methods.md, section 10), so a derived finding on a sample
stands, unless every tensor is within conversion size (see ``_decided``). Nothing else does:
``identical`` needs every byte, and ``independent`` or ``inconclusive`` from a sample has less power
(a permuted copy is re-paired through the unit features the sample keeps, but only in the layers
and projections that keep them). When any
component is left undecided, the whole comparison is run again on the full models, one family for
the multiple-testing step, and the report says that the sample did not decide and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

from .results import ComparisonReport, ComponentComparison, TensorComparison

if TYPE_CHECKING:
    from .compare import ModelSource, Progress
    from .io import Checkpoint

# Verdicts a sample settles; every other verdict sends the comparison to the full pass.
DECIDED_BY_A_SAMPLE = ("derived", "not_comparable")
# Kinds that rule out ``identical`` whatever the values (identity needs every unit, layer and row
# in place).
NOT_IDENTICAL_KINDS = ("permuted", "layer-dropped", "pruned")


def compare_fast(
    suspect: ModelSource,
    references: Sequence[ModelSource],
    *,
    component: str | None = None,
    progress: Progress | None = None,
    allow_network: bool = False,
) -> ComparisonReport:
    """``compare`` from in-memory fingerprints of every side, then in full if they do not decide."""
    from .compare import compare
    from .fingerprint import open_source, sampled_copy

    with ExitStack() as stack:
        opened = [open_source(s, stack, allow_network=allow_network) for s in [suspect, *references]]
        if any(c.format == "fingerprint" for c in opened):
            # A fingerprint side is already a sample: there is no full pass to fall back to.
            return compare(opened[0], opened[1:], component=component, progress=progress)
        sampled = [stack.enter_context(sampled_copy(c)) for c in opened]
        quick = compare(sampled[0], sampled[1:], component=component, progress=progress)
        models = {str(c.path): c for c in opened}
        open_ = [c for c in quick.components if not _decided(quick, c, models)]
        if not open_:
            sides = {str(c.path): "model, sampled in memory (--fast)" for c in opened}
            note = "--fast: decided from the sample (every component derived or not comparable); no full pass"
            return replace(quick, sampled={**(quick.sampled or {}), "sides": sides, "fast": note})
        full = compare(opened[0], opened[1:], component=component, progress=progress)
    undecided = ", ".join(f"{c.suspect_component} {c.verdict}" for c in open_)
    why = (
        f"--fast: the sample did not decide ({undecided}: only a derived finding stands on a sample, "
        "which has less power, and not one within conversion size, which may be identical); "
        "the full pass was run"
    )
    return replace(full, warnings=[why, *full.warnings])


def _decided(report: ComparisonReport, c: ComponentComparison, models: dict[str, Checkpoint]) -> bool:
    """Whether the sample settles component ``c``. A ``derived`` whose every compared tensor is within
    conversion size (r >= 0.99, rel-L2 <= 1%) does not when a matrix of either model lies on an
    integer grid: it may be ``identical``, converted through a block quantisation whose grid only
    consecutive values show (a sample keeps scattered ones). Float grids and float rounding show on
    the sample's values."""
    from .evidence.rules import conversion_sized

    if c.verdict not in DECIDED_BY_A_SAMPLE:
        return False
    if c.verdict != "derived" or c.kind in NOT_IDENTICAL_KINDS:
        return True
    tensors = [
        t
        for t in report.tensors
        if t.suspect_component == c.suspect_component
        and t.reference_model == c.reference
        and t.learned
        and t.pearson is not None
    ]
    if not all(conversion_sized(t.pearson, t.rel_l2) for t in tensors):
        return True
    suspect, reference = models.get(report.suspect.path), models.get(c.reference)
    return suspect is not None and reference is not None and not _grid_possible(tensors, suspect, reference)


def _grid_possible(tensors: list[TensorComparison], suspect: Checkpoint, reference: Checkpoint) -> bool:
    """Whether a matrix of either side could be on an integer grid: a few rows of each, read from the
    models themselves (a tensor the sample built from a view of others is taken as possible)."""
    from .evidence.metrics import on_integer_grid

    for t in tensors:
        if len(t.shape) < 2:
            continue
        for name, model in ((t.suspect, suspect), (t.reference, reference)):
            # Stored quantised (GGUF, int8 with scales): on a grid by construction, nothing to read.
            if name not in model or not model.stored_as_is(name) or on_integer_grid(model.read(name)):
                return True
    return False
