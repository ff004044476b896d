"""The kind of a structural derivation, read from how the tensors had to be paired (a description,
not a test: the tests run on the pairs as usual).

A disguise undone before comparing (``rotated``: residual stream rotated, norm gains folded, the
rotation fitted or seen through the unit-Gram test; ``norm-folded``: gains folded only), a
vocabulary whose rows were paired across a change of size (``vocab-extended``, ``vocab-pruned``,
``vocab-replaced``), experts paired with the dense MLP they came from (``upcycled``), key/value
heads paired with the mean of the reference heads a GQA conversion pooled (``gqa-converted``), a
layer map in which a reference layer is the source of several suspect layers (``depth-upscaled``),
and units whose rows point the parent's way at other scales (``rescaled``).
"""

from __future__ import annotations

import math
import statistics

from ..align import Alignment, TensorPair
from ..align.gqa import PooledHeadsView
from ..io.views import TensorView
from ..results import LayerMatrix, TestResult
from .disguises import AlignedView, rescaled
from .thresholds import ALPHA_SOME


def structural_kind(
    alignment: Alignment,
    component: str,
    matrices: list[LayerMatrix],
    basis_free: tuple[float, TestResult | None] = (math.nan, None),
) -> str | None:
    """The structural kind of one suspect component's derivation; None if its structure is the parent's.

    ``basis_free``: the coordinate family's log p and the unit-Gram test, which says ``rotated``
    where no rotation was fitted yet the Gram matrices agree and the coordinates do not."""
    disguise = alignment.disguise
    if disguise is not None and any(p.suspect_component == component and p.learned for p in alignment.pairs):
        return "rotated" if disguise.rotated or _seen_rotated(*basis_free) else "norm-folded"
    vocab = [rows for name, rows in alignment.vocab if name == component]
    if vocab:
        return vocab[0].kind
    if any(p.paired_by == "upcycled" for p in alignment.pairs if p.suspect_component == component):
        return "upcycled"
    if _pooled(alignment, component):
        return "gqa-converted"
    if any(m.layer_map == "repeated" for m in matrices):
        return "depth-upscaled"
    if rescaled(alignment, component) is not None:
        return "rescaled"
    return None


def rotation_not_fitted(alignment: Alignment) -> bool:
    """Gains were folded but no shared vocabulary let a residual rotation be fitted."""
    return alignment.disguise is not None and not alignment.disguise.rotation


def _seen_rotated(coordinate_log_p: float, gram: TestResult | None) -> bool:
    if gram is None:
        return False
    alpha = math.log(ALPHA_SOME)
    return gram.detail["log_p"] < alpha and not coordinate_log_p < alpha


def disguise_result(alignment: Alignment) -> TestResult | None:
    """What was undone before the tests ran, and how well the rotation carries held-out tokens (a
    record, not a test: its p-value is left empty)."""
    disguise = alignment.disguise
    if disguise is None:
        return None
    return TestResult(
        "disguise undone",
        statistic=disguise.held_out_r,
        p_value=None,
        null="not a test: the alignment looks at shared-token embeddings only, which are then set aside; "
        "the tests above ran on the other matrices in the aligned basis",
        n=disguise.tokens_held_out,
        detail={"undone": disguise.describe(), "residual_r_after_alignment": disguise.held_out_r},
    )


def pooled_heads_result(alignment: Alignment, component: str) -> TestResult:
    """The key/value head groups a GQA conversion pooled, layer by layer (a record, not a test: the
    pooled pairs are tested with the other tensors)."""
    pooled = _pooled(alignment, component)
    views = [_pooled_view(p.reference) for p in pooled]
    groups = {v.note for v in views}  # the same words wherever the grouping agrees
    return TestResult(
        "kv heads pooled",
        statistic=float(statistics.mean(len(g) for v in views for g in v.groups)),
        p_value=None,
        null="not a test (statistic: reference heads per key/value head): each suspect key/value head is "
        "paired with the mean of its group of reference heads; contiguous groups unless a matching "
        "fitted on the sibling projection beats its permutation null",
        n=len(views),
        detail={"groups": "; ".join(sorted(groups)), "layers": len({p.layer for p in pooled})},
    )


def _pooled_view(view: TensorView) -> PooledHeadsView:
    """The pooled reading of a reference view, also under a rotation undone (``AlignedView``)."""
    return view.source if isinstance(view, AlignedView) else view


def _pooled(alignment: Alignment, component: str) -> list[TensorPair]:
    return [p for p in alignment.pairs if p.suspect_component == component and p.paired_by == "heads-pooled"]


def seen_through(spots: list[str], alignment: Alignment, gram: TestResult | None = None) -> list[str]:
    """Blind spots less those of a change of basis (folded gains, a norm folded into a tied head) where
    the rotation they allow was fitted and undone; where it could not be fitted but the unit-Gram
    test ran, narrowed to what that test cannot see."""
    disguise = alignment.disguise
    kept = [s for s in spots if not any(words in s for words in CHANGE_OF_BASIS)]
    if disguise is None or len(kept) == len(spots) or (not disguise.rotation and gram is None):
        return spots
    return kept if disguise.rotation else [*kept, UNFITTED_ROTATION]


UNFITTED_ROTATION = (
    "the suspect's norm gains are exactly 1.0 where the reference's are not and no shared vocabulary lets "
    "a residual rotation be fitted: the unit-Gram test sees a rotated residual stream, but not one "
    "combined with a permutation of the MLP units"
)


# Blind spots a change of the residual basis explains, in the words of ``blindspots.blind_spots``:
# folded gains, and a final norm folded into a tied head.
CHANGE_OF_BASIS = (
    "norm gains of the suspect are exactly 1.0",
    "output head is its own token embedding matrix with rescaled columns",
)
