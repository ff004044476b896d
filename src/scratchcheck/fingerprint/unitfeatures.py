"""Per-unit features: every column of a few kept rows of the MLP down and attention output projections.

A fingerprint keeps the rows and columns of a matrix that a keyed hash of their index chooses, so a
derivative whose MLP units or heads were permuted keeps *other* units than its parent, and matching
cannot re-pair them. The down projection ``[d_model, d_ff]`` and the output projection
``[d_model, heads * head_dim]`` have residual dimensions as rows and units as columns: keeping all
columns of ``FEATURE_ROWS`` of their kept rows (read one whole row at a time, as the kept rows are)
gives every MLP unit and every head a feature vector on the same residual dimensions in both
models, chosen by the same hash. Unit matching reads them in place of the kept sub-matrix
(``evidence.keptunits``).

Size: ``min(FEATURE_ROWS, kept rows) x columns x itemsize`` per chosen tensor, for at most
``MAX_MATCHED_LAYERS`` evenly spaced layers per component and role (the layers unit matching
reads): a LLaMA-7B in bf16 (27 of its 4,096 residual rows kept) keeps 8 x 27 x (11,008 + 4,096) x 2
bytes = 6.5 MB. Routed MoE experts keep none (128 experts in 8 layers would add 78 MB to a
GLM-4.5-Air fingerprint, past its 64 MB bound). Why 32 rows: with 16, a heavy fine-tune's units
(element r ~ 0.8) are matched to their own index only about half the time among 11,008, which
reads as a permutation; with 27-32, nine in ten.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..evidence.keptunits import GROUPS
from ..evidence.units import MAX_MATCHED_LAYERS
from . import sampling
from .format import values_sha256

if TYPE_CHECKING:
    from ..arch import ModelLayout

FEATURE_ROWS = 32  # kept residual rows whose every column is stored


def feature_rows(shape: tuple[int, ...], plan: sampling.Plan) -> np.ndarray | None:
    """The residual rows whose every column is kept: the first ``FEATURE_ROWS`` kept rows of a
    sampled matrix whose columns are sampled; None where the kept sub-matrix already holds every unit."""
    positions = sampling.sample_positions(shape, plan)
    if positions is None or len(shape) != 2 or positions[1].size == shape[1]:
        return None
    return positions[0][:FEATURE_ROWS]


def chosen(model: ModelLayout, plan: sampling.Plan) -> dict[str, int]:
    """Stored tensor -> columns per unit (1 for MLP units, ``head_dim`` for heads) of the tensors
    that keep features: plain ``[d_model, units]`` down/output projections (no expert, no transform),
    at most ``MAX_MATCHED_LAYERS`` evenly spaced layers per component and role."""
    found: dict[tuple[str, str], dict[int, tuple[str, int]]] = defaultdict(dict)
    for entry in model.entries:
        view = entry.view
        if entry.role not in GROUPS or entry.layer is None or entry.expert is not None or view.ops:
            continue
        block = 1 if entry.role == "mlp.down.weight" else entry.head_dim
        if block and len(view.sources) == 1 and feature_rows(view.shape, plan) is not None:
            found[(entry.component, entry.role)][entry.layer] = (view.name, block)
    out = {}
    for by_layer in found.values():
        layers = sorted(by_layer)
        picks = np.unique(np.linspace(0, len(layers) - 1, min(len(layers), MAX_MATCHED_LAYERS)).round())
        out.update(by_layer[layers[int(i)]] for i in picks)
    return out


def whole_rows(shape: tuple[int, ...], positions: sampling.Positions) -> sampling.Positions:
    """The kept rows with every column: what a tensor that keeps unit features is read as (the kept
    rows are read from their first to their last kept column anyway)."""
    return positions[0], np.arange(shape[1])


def split(rows: np.ndarray, positions: sampling.Positions) -> tuple[np.ndarray, np.ndarray]:
    """(unit features, kept sub-matrix) from the kept rows read whole."""
    return np.array(rows[:FEATURE_ROWS]), np.ascontiguousarray(rows[:, positions[1]])


def record(features: np.ndarray, positions: sampling.Positions, block: int) -> dict[str, Any]:
    """The header's ``unit_features`` of a tensor."""
    return {
        "rows": positions[0][: features.shape[0]].tolist(),
        "block": block,
        "sha256": values_sha256(features),
    }
