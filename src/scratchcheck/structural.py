"""Structural derivations of a model's weights, as real derivatives are built, for tests and benches.

Depth up-scaling stacks copies of the parent's layers (SOLAR 10.7B: layers [0..k) and [j..N));
vocabulary surgery appends, drops or replaces embedding rows; MoE upcycling copies a dense MLP into
every expert; GQA conversion mean-pools key/value heads; merges mix two parents; per-unit rescaling
changes weights while the network computes the same (``synthetic.rotate_residual`` folds the norm
gains and rotates the residual stream).
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


def take_rows(weights: Weights, names: list[str], rows: np.ndarray) -> Weights:
    """Keep only ``rows`` of the named matrices, in that order (a pruned or reordered vocabulary)."""
    return {n: (w[rows].copy() if n in names else w) for n, w in weights.items()}


def append_rows(weights: Weights, names: list[str], count: int, seed: int = 0) -> Weights:
    """Append ``count`` new rows to the named matrices, drawn like the existing ones (new tokens)."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for n in names:
        w = weights[n]
        new = rng.standard_normal((count, *w.shape[1:])) * float(w.std()) + float(w.mean())
        out[n] = np.concatenate([w, new.astype(w.dtype)])
    return out


def new_vocabulary(weights: Weights, names: list[str], count: int, seed: int = 0) -> Weights:
    """The named matrices replaced by ``count`` new rows drawn like the old (another tokenizer: no
    token shared with the parent)."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for n in names:
        w = weights[n]
        new = rng.standard_normal((count, *w.shape[1:])) * float(w.std()) + float(w.mean())
        out[n] = new.astype(w.dtype)
    return out


def upcycle(weights: Weights, experts: int, seed: int = 0, *, block: str = BLOCK) -> Weights:
    """Every layer's dense MLP copied into ``experts`` experts, with a new router (sparse upcycling)."""
    rng = np.random.default_rng(seed)
    pattern = re.compile(re.escape(block) + r"(\d+)\.mlp\.(gate|up|down)_proj\.weight")
    out: Weights = {}
    for name, w in weights.items():
        m = pattern.fullmatch(name)
        if m is None:
            out[name] = w
            continue
        p = f"{block}{m.group(1)}.mlp."
        for e in range(experts):
            out[f"{p}experts.{e}.{m.group(2)}_proj.weight"] = w.copy()
        if m.group(2) == "up":
            hidden = w.shape[1]
            out[p + "gate.weight"] = (rng.standard_normal((experts, hidden)) / np.sqrt(hidden)).astype(
                w.dtype
            )
    return out


def to_gqa(
    weights: Weights,
    kv_heads: int,
    *,
    heads: int,
    order: list[int] | None = None,
    projections: tuple[str, ...] = ("self_attn.k_proj.", "self_attn.v_proj."),
) -> Weights:
    """Grouped-query attention from multi-head (Ainslie et al. 2023): the key and value heads (weights
    and biases of the named ``projections``) of each of ``kv_heads`` groups mean-pooled into one.
    ``heads``: the key/value heads stored (a multi-head parent's head count). Groups are contiguous
    heads of ``order`` (as stored by default; a shuffled order groups arbitrary heads)."""
    out = dict(weights)
    order = list(range(heads)) if order is None else order
    for name, w in weights.items():
        if any(p in name for p in projections):
            grouped = w.reshape(heads, -1, *w.shape[1:])[order]
            pooled = grouped.reshape(kv_heads, heads // kv_heads, *grouped.shape[1:]).mean(axis=1)
            out[name] = pooled.reshape(-1, *w.shape[1:]).astype(w.dtype)
    return out


def merge(first: Weights, second: Weights, weight: float) -> Weights:
    """A linear merge: ``weight`` x first + (1 - weight) x second, tensor by tensor."""
    return {n: (weight * w + (1 - weight) * second[n]).astype(w.dtype) for n, w in first.items()}


def rescale_units(weights: Weights, spread: float = 0.5, seed: int = 0, *, block: str = BLOCK) -> Weights:
    """Per-unit rescaling of every MLP: up rows x c and down columns x 1/c (c log-normal with sd
    ``spread``); SwiGLU multiplies the up projection in linearly, so the function is unchanged."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name, up in weights.items():
        if name.startswith(block) and name.endswith("mlp.up_proj.weight"):
            down = name.replace("up_proj", "down_proj")
            c = np.exp(spread * rng.standard_normal(up.shape[0])).astype(up.dtype)
            out[name], out[down] = up * c[:, None], weights[down] / c[None, :]
    return out
