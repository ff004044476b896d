"""The scan's first stage: which registered fingerprints the full test could possibly relate to a suspect.

The full test (``compare``) only ever measures a pair of tensors whose normalised views have the same
shape, directly or transposed (``align``: pairs by role need equal shapes, pairs by content meet a
matrix and its transpose). A registered model sharing no such shape with the suspect therefore
yields no measured pair, hence no p-value and no ``derived`` verdict, whatever its relation. The
filter keeps every entry that shares at least one shape key, so it cannot drop a source that the
full test would find. Keys are taken from each fingerprint opened as a checkpoint, i.e. from the
very views ``align`` compares. Permuted, rotated, layer-dropped and vocabulary-changed derivatives
keep the shapes of their unchanged tensors and pass; only wholly reshaped models are filtered out.
"""

from __future__ import annotations

from ..io import Checkpoint


def shape_keys(checkpoint: Checkpoint) -> set[str]:
    """One key per distinct normalised view shape, its dimensions sorted (so a transpose shares it)."""
    from ..arch import layout

    return {"x".join(str(d) for d in sorted(e.view.shape)) for e in layout(checkpoint).entries}
