"""Pair the right tensors: normalised layouts, sketches, layer maps, content matching, non-learned tensors.

``align(suspect_layout, reference_layout)`` is the entry point; the modules beside it are its steps:
``layouts`` (views that undo fused, transposed and stacked storage), ``sketch`` (small fixed
projections of values), ``layermap`` (the i x j layer matrix and the map read from it),
``contentmatch`` (pairing renamed tensors by value) and ``nonlearned`` (tensors that are no evidence).
"""

from ..io.views import TensorView
from .pairing import Alignment, TensorPair, align

__all__ = ["Alignment", "TensorPair", "TensorView", "align"]
