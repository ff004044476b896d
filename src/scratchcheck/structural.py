"""Structural derivations of a model's weights, as real derivatives are built, for tests and benches.

Depth up-scaling stacks copies of the parent's layers (SOLAR 10.7B: layers [0..k) and [j..N));
vocabulary surgery appends or drops embedding rows; MoE upcycling copies a dense MLP into every
expert; merges mix two parents; function-preserving disguises (norm folding, a rotation of the
residual stream, per-unit rescaling) change every weight while the network computes the same.
Each function takes and returns a name -> array dict in Hugging Face LLaMA naming.
"""

from __future__ import annotations

import re

import numpy as np

Weights = dict[str, np.ndarray]
BLOCK = "model.layers."


def stack_layers(weights: Weights, sources: list[int], *, block: str = BLOCK) -> Weights:
    """A model whose layer i is a copy of the parent's layer ``sources[i]`` (repeats allowed)."""
    pattern = re.compile(re.escape(block) + r"(\d+)\.(.*)")
    by_layer: dict[int, dict[str, np.ndarray]] = {}
    out: Weights = {}
    for name, w in weights.items():
        m = pattern.fullmatch(name)
        if m is None:
            out[name] = w
        else:
            by_layer.setdefault(int(m.group(1)), {})[m.group(2)] = w
    for i, source in enumerate(sources):
        for rest, w in by_layer[source].items():
            out[f"{block}{i}.{rest}"] = w.copy()
    return out
