"""Basis-free evidence where a residual rotation could not be fitted: MLP unit Gram matrices.

A rotation R of the residual stream (norm gains folded first) turns every matrix that reads the
stream into ``W R^T`` and every matrix that writes it into ``R W``: element-wise tests and unit
matching in the residual basis see nothing, and without tokens shared by both vocabularies the
rotation cannot be fitted (``disguises``). Products taken *over* the residual axis are what R
leaves alone: the cosine between two units' up rows (or gate rows, or down columns) is the same
before and after, R being orthogonal. (``Wq_h^T Wk_h`` and ``Wo_h Wv_h`` live in the residual basis
and are only conjugated, ``R M R^T``; the head-basis products ``Wq_h Wk_h^T`` and ``Wv_h Wo_h`` are
unchanged, but rotary embeddings give head dimensions a frequency structure that independent models
share, so their entries are not exchangeable and they are not used.)

The test is Mantel's: per layer, the Pearson correlation of the upper triangles of the suspect's and
the reference's unit-cosine matrices (gains folded into the reference as into the suspect), averaged
over up, gate and down. Under "independent", MLP units are exchangeable (initialisation is i.i.d.
per unit and training is equivariant to relabelling them), so the reference's matrices with its
units permuted (rows and columns alike, one permutation per layer for all three roles) are draws
from the null; the Student prediction test over ``NULL_DRAWS`` draws gives each layer's p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..align import TensorPair
from ..results import TestResult
from . import stats
from .stats import Evidence, prediction_test

ROLES = {"mlp.up.weight": False, "mlp.gate.weight": False, "mlp.down.weight": True}  # True: units are columns
MAX_UNITS = 512  # units per layer (the same indices on both sides: a derivative keeps them)
MAX_LAYERS = 8
NULL_DRAWS = 19


@dataclass(frozen=True)
class LayerGram:
    layer: int
    correlation: float  # mean over roles of the Pearson r of the cosine Gram upper triangles
    null_correlation: float
    evidence: Evidence


def unit_grams(pairs: Sequence[TensorPair], seed: int = 0) -> list[LayerGram]:
    """Mantel tests of the MLP unit Gram matrices, on up to MAX_LAYERS evenly spaced layers."""
    by_layer: dict[int, list[TensorPair]] = {}
    for p in pairs:
        if p.learned and p.role in ROLES and p.layer is not None and p.suspect.shape == p.reference.shape:
            by_layer.setdefault(p.layer, []).append(p)
    layers = sorted(by_layer)
    if len(layers) > MAX_LAYERS:
        layers = [layers[i] for i in np.linspace(0, len(layers) - 1, MAX_LAYERS).round().astype(int)]
    return [_layer(layer, by_layer[layer], seed + layer) for layer in layers]


def _layer(layer: int, pairs: list[TensorPair], seed: int) -> LayerGram:
    rng = np.random.default_rng(seed)
    units = _units(pairs[0])
    picked = np.sort(rng.choice(units, MAX_UNITS, replace=False)) if units > MAX_UNITS else np.arange(units)
    perms = [rng.permutation(picked.size) for _ in range(NULL_DRAWS)]
    upper = np.triu_indices(picked.size, k=1)
    observed, null = [], np.zeros((len(pairs), NULL_DRAWS))
    for i, pair in enumerate(pairs):
        s, r = (_cosines(v.load(), ROLES[pair.role], picked) for v in (pair.suspect, pair.reference))
        s_upper = s[upper]
        observed.append(_pearson(s_upper, r[upper]))
        null[i] = [_pearson(s_upper, r[np.ix_(p, p)][upper]) for p in perms]
    value, draws = float(np.mean(observed)), null.mean(axis=0)
    return LayerGram(layer, value, float(draws.mean()), prediction_test(value, draws.tolist()))


def _units(pair: TensorPair) -> int:
    shape = pair.suspect.shape
    return shape[1] if ROLES[pair.role] else shape[0]


def _cosines(w: np.ndarray, columns: bool, picked: np.ndarray) -> np.ndarray:
    """Cosines between the picked units' vectors in the residual basis."""
    x = np.asarray(w[:, picked].T if columns else w[picked], dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    return x @ x.T


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def gram_result(layers: Sequence[LayerGram]) -> TestResult | None:
    """The layers' Mantel tests, Cauchy-combined (None when no layer had MLP matrices)."""
    log_p = stats.cauchy_combine([g.evidence.log_p for g in layers]) if layers else float("nan")
    if not math.isfinite(log_p):
        return None
    return TestResult(
        "unit-gram (basis-free)",
        statistic=float(np.mean([g.correlation for g in layers])),
        p_value=stats.p_of(log_p),
        null="unrelated MLP units: the reference's unit-cosine matrices (up rows, gate rows, down columns; "
        "unchanged by any rotation of the residual stream) with its units permuted, one permutation per "
        f"layer ({NULL_DRAWS} draws, Student prediction interval; Mantel), Cauchy-combined across layers",
        n=len(layers),
        detail={
            "log_p": log_p,
            "log10_p": stats.log10_p(log_p),
            "layers": [
                {
                    "layer": g.layer,
                    "correlation": round(g.correlation, 4),
                    "null_correlation": round(g.null_correlation, 4),
                    "log10_p": stats.log10_p(g.evidence.log_p),
                }
                for g in layers
            ],
        },
    )
