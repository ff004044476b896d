"""The kind of a structural derivation, read from how the tensors had to be paired (a description,
not a test: the tests run on the pairs as usual).

A vocabulary whose rows were paired across a change of size (``vocab-extended``, ``vocab-pruned``,
``vocab-replaced``), experts paired with the dense MLP they came from (``upcycled``), and a layer
map in which a reference layer is the source of several suspect layers (``depth-upscaled``).
"""

from __future__ import annotations

from ..align import Alignment
from ..results import LayerMatrix


def structural_kind(alignment: Alignment, component: str, matrices: list[LayerMatrix]) -> str | None:
    """The structural kind of one suspect component's derivation; None if its structure is the parent's."""
    vocab = [rows for name, rows in alignment.vocab if name == component]
    if vocab:
        return vocab[0].kind
    if any(p.paired_by == "upcycled" for p in alignment.pairs if p.suspect_component == component):
        return "upcycled"
    if any(m.layer_map == "repeated" for m in matrices):
        return "depth-upscaled"
    return None
