"""Pair the right tensors: normalised layouts, sketches, layer maps, content matching, non-learned tensors.

``align(suspect_layout, reference_layout)`` is the entry point; the modules beside it are its steps:
``layouts`` (views that undo fused, transposed and stacked storage), ``sketch`` (small fixed
projections of values), ``layermap`` (the i x j layer matrix and the map read from it),
``contentmatch`` (pairing renamed tensors by value) and ``nonlearned`` (tensors that are no evidence).

The names below are imported on first use (PEP 562): a fingerprint, which needs only ``sketch`` and
``nonlearned``, does not load the pairing code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy_names

_EXPORTS = {
    "Alignment": ".pairing",
    "TensorPair": ".pairing",
    "align": ".pairing",
    "TensorView": "..io.views",
}
__all__ = ["Alignment", "TensorPair", "TensorView", "align"]


__getattr__ = _lazy_names(__name__, _EXPORTS)


if TYPE_CHECKING:
    from ..io.views import TensorView
    from .pairing import Alignment, TensorPair, align
