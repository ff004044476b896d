"""Unit matching from fingerprints: every MLP unit and head, read on a few kept residual rows.

A fingerprint keeps the units a hash of their index chooses, so where a derivative's units or heads
were permuted the two sides keep different units and matching the kept sub-matrices cannot re-pair
them. Fingerprints also keep, for the layers unit matching reads, every column of a few kept rows of
the down and output projections (``fingerprint.unitfeatures``): a feature vector for every unit (a
column) and every head (a block of ``head_dim`` columns) on the same residual dimensions on both
sides. Where both sides hold them, ``units.match`` matches and tests them (its featurizers, its
residual-basis null) in place of the sub-matrix matching of that group and layer.

The null permutes the kept residual rows among themselves. For an independent reference whose
distribution is unchanged by any permutation of its residual basis (``units``), the rows it keeps
at a fixed set of indices are exchangeable among themselves, so the observed matched similarity and
the null draws are exchangeable as on full matrices.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..arch import ModelLayout
from ..results import TestResult
from . import units

GROUPS = {"mlp.down.weight": "mlp units", "attn.o.weight": "attention heads"}


def with_features(
    pairs: Sequence[Any], suspect: ModelLayout, reference: ModelLayout, *, seed: int = 0
) -> tuple[list[units.Matching], TestResult | None]:
    """The matchings of every group and layer that has unit features on both sides (the kept
    sub-matrix matching of those is then not run); and, where a side is a fingerprint and no sampled
    down or output projection of the component has features on both sides, a note of the power lost."""
    sides = (
        getattr(suspect.checkpoint, "unit_features", None),
        getattr(reference.checkpoint, "unit_features", None),
    )
    if sides == (None, None):
        return [], None  # no fingerprint on either side: every unit is compared
    found: dict[tuple[str, int], units.Matching] = {}
    lacking = 0  # sampled down/output projections without features on both sides
    for pair in pairs:
        role, layer = units.role_and_layer(pair)
        if role not in GROUPS or layer is None or getattr(pair, "expert", None) is not None:
            continue
        features = [
            None if read is None else read(view.name)
            for read, view in zip(sides, (pair.suspect, pair.reference), strict=True)
        ]
        if None in features or features[0][:2] != features[1][:2]:
            lacking += _sampled(pair.suspect)
            continue
        (_, block, s), (_, _, r) = features
        featurize = units.mlp_features if block == 1 else _head_blocks(block)
        found[(GROUPS[role], layer)] = units.match(
            {role: s}, {role: r}, featurize, group=GROUPS[role], layer=layer, seed=seed + layer
        )
    out = list(found.values())
    if found or not lacking:
        return out, None
    return out, TestResult(
        "unit-matching (no unit features)",
        statistic=float(lacking),
        p_value=None,
        null=f"{lacking} sampled down/output projection(s) have no unit features on both sides (a "
        "fingerprint made before they were stored): units and heads were matched on the kept "
        "sub-matrices only, which hold other units on the two sides when units or heads were "
        "permuted, so a permuted derivative is found only through its other tensors",
        n=lacking,
    )


def _sampled(view: Any) -> int:
    """1 where the stored tensor behind ``view`` holds more elements than its kept sample."""
    return int(int(np.prod(view.shape)) < view.checkpoint.info(view.name).numel)


def _head_blocks(head_dim: int) -> units.Featurizer:
    """Head h: columns ``h * head_dim`` to ``(h + 1) * head_dim`` of the output projection's feature
    rows, each in the residual basis (the MLP down projection's unit features, taken in blocks)."""

    def build(arrays: units.Arrays, perms: list[np.ndarray | None]) -> Iterator[np.ndarray]:
        for columns in units.mlp_features({"mlp.down.weight": arrays["attn.o.weight"]}, perms):
            yield columns.reshape(-1, head_dim * columns.shape[1])

    return build
