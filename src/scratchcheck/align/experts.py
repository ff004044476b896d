"""MoE experts paired with the dense MLP they were upcycled from.

Upcycling (Qwen1.5-MoE, Mixtral-style sparse upcycling) copies the parent's dense MLP into every
expert (and the shared expert) and then trains; the router is new. Every expert therefore meets
the dense MLP of the same layer (through the layer map), role for role (``expert.gate`` with
``mlp.gate`` ...), where the shapes agree; the router has no counterpart and stays unpaired.
"""

from __future__ import annotations

from ..arch import Entry
from .layermap import LayerMap

EXPERT_PREFIXES = ("expert.", "shared_expert.")


def dense_counterparts(
    mine: list[Entry], theirs: list[Entry], layer_map: LayerMap, used: set[int]
) -> list[tuple[Entry, Entry]]:
    """(suspect expert tensor, reference dense MLP tensor) for every unpaired expert tensor whose
    layer has a dense MLP of the same shape in the reference; one dense tensor serves every expert."""
    dense = {
        (e.role, e.layer): e
        for e in theirs
        if e.role.startswith("mlp.") and e.expert is None and id(e) not in used
    }
    out = []
    for s in mine:
        if id(s) in used or s.layer is None or not s.role.startswith(EXPERT_PREFIXES):
            continue
        layer = s.layer if layer_map.kind == "none" else layer_map.target(s.layer)
        r = dense.get(("mlp." + s.role.split(".", 1)[1], layer))
        if r is not None and r.view.shape == s.view.shape:
            out.append((s, r))
    return out
