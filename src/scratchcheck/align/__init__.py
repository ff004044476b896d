"""Pair the right tensors: normalised layouts, sketches, layer maps, content matching, non-learned tensors.

``align(suspect_layout, reference_layout)`` is the entry point; the modules beside it are its steps:
``layouts`` (views that undo fused, transposed and stacked storage), ``sketch`` (small fixed
projections of values), ``layermap`` (the i x j layer matrix and the map read from it),
``contentmatch`` (pairing renamed tensors by value) and ``nonlearned`` (tensors that are no evidence).

The names below are imported on first use (PEP 562): a fingerprint, which needs only ``sketch`` and
``nonlearned``, does not load the pairing code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Alignment": ".pairing",
    "TensorPair": ".pairing",
    "align": ".pairing",
    "TensorView": "..io.views",
}
__all__ = ["Alignment", "TensorPair", "TensorView", "align"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from ..io.views import TensorView
    from .pairing import Alignment, TensorPair, align
