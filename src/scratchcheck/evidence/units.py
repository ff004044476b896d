"""Unit correspondence under the network's symmetries: MLP units, attention heads, MoE experts.

Units of an MLP, heads of an attention layer and experts of an MoE layer can be permuted without
changing what the network computes, so a derivative can be disguised by permuting them, and an
element-wise test then sees nothing. Here each unit gets a feature vector in the residual-stream
basis (which a unit permutation leaves alone), suspect units are matched to reference units with
the Hungarian algorithm, and two questions get calibrated answers:

(a) is the matching the identity? (Spearman of unit index vs matched index; Zhu et al. 2025)
(b) is the matched similarity higher than matching achieves between unrelated weights? The null
    redraws the reference with its residual basis randomly permuted: for an independently trained
    reference this is an exact symmetry of its distribution (initialisation is i.i.d. per dimension
    and training is equivariant to it), so the observed similarity and the null draws are
    exchangeable; a derivative loses its advantage as soon as the basis is scrambled.

Memory stays bounded on large models: tensors arrive as views (``TensorView`` or arrays) and are
streamed in row blocks; where the residual stream is wider than ``2 * PROJECTED`` the features are
read through one fixed random projection of it to ``PROJECTED`` dimensions (Johnson-Lindenstrauss:
cosines kept to about ``1/sqrt(PROJECTED)``), the same for suspect, reference and every null draw,
so the null stays exact. Experts are read one at a time, every null draw from the same read.

Cost: a null draw permutes the residual basis, which without a projection is a permutation of the
features already computed (one read of an MLP serves all draws) and with one is a permuted
projection (one streamed pass a draw); head and expert features of every draw come from one product
per unit; similarities are float32 products.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arch import ModelLayout
from ..io.mapping import drop_pages, released
from .backend import matmul, resident
from .stats import Evidence, identity_test, prediction_test

MAX_UNITS = 1024  # suspect units matched per group; above this a random subset is matched
NULL_DRAWS = 16  # residual-basis permutations for the null of the matched similarity
PROBES = 8  # random residual directions on which head/expert circuits are read
PROJECTED = 512  # residual widths above twice this are read through a random projection to this many
BLOCK = 1 << 22  # elements per streamed row block

# Role -> a layer's tensor: an array, or a view with ``shape`` and ``load()`` read when needed.
Arrays = Mapping[str, Any]
# [units, features] of a layer, once per residual-basis permutation (None: the stored basis).
Featurizer = Callable[[Arrays, list[np.ndarray | None]], Iterator[np.ndarray]]


@dataclass(frozen=True)
class Matching:
    """One group of one layer, matched: how well, and whether the matching is the identity."""

    group: str  # mlp units | attention heads | experts
    layer: int | None
    units: int  # suspect units matched
    total: int  # suspect units in the group
    reference_units: int
    matched_similarity: float  # mean cosine of matched pairs
    null_similarity: float  # mean of the same under the residual-permutation null
    identity_fraction: float  # share of suspect units matched to the reference unit of the same index
    identity: Evidence
    similarity: Evidence
    seconds: float
    non_finite: int = 0  # NaN/Inf feature entries (from NaN/Inf weights), counted as 0 when matching


def mlp_features(arrays: Arrays, perms: list[np.ndarray | None]) -> Iterator[np.ndarray]:
    """Unit u: row u of gate and up, column u of down (all [out, in]), each in the residual basis.

    Without a projection, permuting the residual basis by ``perm`` permutes each role's feature
    columns by ``perm``, so one read serves every draw. Through a projection ``P`` it is projecting
    by ``P[inv]`` (``inv`` the inverse permutation): one streamed pass over the stored weights a draw.
    """
    projection = _projection(_residual_size(arrays))
    if projection is None:
        stored = _mlp_pass(arrays, None)
        roles = stored.shape[1] // _residual_size(arrays)
        for perm in perms:
            if perm is None:
                yield stored
            else:
                units = stored.shape[0]
                yield stored.reshape(units, roles, -1)[:, :, perm].reshape(units, -1)
        return
    for perm in perms:
        # Yielded straight from the call: this frame keeps no reference while the caller works.
        yield _mlp_pass(arrays, projection if perm is None else projection[np.argsort(perm)])


def _mlp_pass(arrays: Arrays, q: np.ndarray | None) -> np.ndarray:
    """[units, roles * k] features through ``q`` ([d, k]; None: the weights themselves, k = d)."""
    roles = [r for r in ("mlp.gate.weight", "mlp.up.weight", "mlp.down.weight") if r in arrays]
    units = _units(roles[0], arrays[roles[0]])
    k = _residual_size(arrays) if q is None else q.shape[1]
    out = np.empty((units, k * len(roles)), np.float32)
    for i, role in enumerate(roles):
        times = _cols_times if role == "mlp.down.weight" else _rows_times
        times(_load(arrays[role]), q, out[:, i * k : (i + 1) * k])
    return out


def head_features(n_heads: int, head_dim: int, seed: int = 0) -> Featurizer:
    """Head h: its QK circuit Wq_h^T Wk_g and OV circuit Wo_h Wv_g, read on PROBES random directions.

    Circuits are unchanged by any change of basis inside a head (and grouped-query attention ties
    each query head to its key/value group g), so only the residual basis matters.
    """

    def build(arrays: Arrays, perms: list[np.ndarray | None]) -> Iterator[np.ndarray]:
        q, k, v, o = (
            _load(arrays[f"attn.{r}.weight"]) if f"attn.{r}.weight" in arrays else None for r in "qkvo"
        )
        d = next(w.shape[1] for w in (q, k, v) if w is not None) if o is None else o.shape[0]
        probes, projection = _probes(d, seed, perms), _projection(d)
        kv_heads = (
            max(1, (k if k is not None else v).shape[0] // head_dim)
            if (k is not None or v is not None)
            else 1
        )
        group = max(1, n_heads // kv_heads)
        feats: list[list[np.ndarray]] = [[] for _ in perms]
        with released(*(w for w in (q, k, v, o) if w is not None)):  # pages back once read
            for h in range(n_heads):
                rows = slice(h * head_dim, (h + 1) * head_dim)
                kv = slice((h // group) * head_dim, (h // group + 1) * head_dim)
                circuits, plain = [], []
                if q is not None and k is not None:
                    circuits.append(matmul(q[rows].T, matmul(k[kv], probes)))
                if o is not None and v is not None:
                    circuits.append(matmul(o[:, rows], matmul(v[kv], probes)))
                elif q is not None:
                    plain.append(_float32(q[rows]).T)
                _add_unit(feats, perms, projection, circuits, plain)
        for per_draw in feats:
            yield np.stack(per_draw)

    return build


def expert_features(experts: int, seed: int = 0) -> Featurizer:
    """Expert e: Wdown_e Wup_e and Wdown_e Wgate_e on PROBES directions (unchanged by permuting the
    expert's own units), plus its router row; rows projected as in ``mlp_features``.

    With the residual basis permuted by ``p`` (inverse ``inv``) the circuit reads
    ``(Wdown Wup g[inv])[p]``: every draw's probes go through one read of each expert."""

    def build(arrays: Arrays, perms: list[np.ndarray | None]) -> Iterator[np.ndarray]:
        d = arrays["expert.down.weight.0"].shape[0]
        probes, projection = _probes(d, seed, perms), _projection(d)
        router = _float32(_load(arrays["router.weight"])) if "router.weight" in arrays else None
        feats: list[list[np.ndarray]] = [[] for _ in perms]
        for e in range(experts):
            stored = {
                m: _load(arrays[f"expert.{m}.weight.{e}"])
                for m in ("down", "up", "gate")
                if f"expert.{m}.weight.{e}" in arrays
            }
            with released(*stored.values()):
                down = _float32(stored["down"])
                circuits = [matmul(down, matmul(stored[m], probes)) for m in ("up", "gate") if m in stored]
            _add_unit(feats, perms, projection, circuits, [] if router is None else [router[e]])
        for per_draw in feats:
            yield np.stack(per_draw)

    return build


def _probes(d: int, seed: int, perms: list[np.ndarray | None]) -> np.ndarray:
    """PROBES random residual directions, once per draw side by side: with the residual basis
    permuted by p (inverse inv) a circuit ``W g`` reads ``(W g[inv])[p]``, so every draw's circuits
    come from one product with the stored ``W``."""
    g = np.random.default_rng(seed).standard_normal((d, PROBES))
    return np.concatenate([g if p is None else g[np.argsort(p)] for p in perms], axis=1)


def _add_unit(
    feats: list[list[np.ndarray]],
    perms: list[np.ndarray | None],
    projection: np.ndarray | None,
    circuits: list[np.ndarray],
    rows: list[np.ndarray],
) -> None:
    """Append one unit's features for every draw: draw t's block of each circuit (from ``_probes``)
    and each array in ``rows``, whose first axis is the residual stream, permuted and projected.

    Every draw's permuted columns are gathered side by side and projected in one product."""
    columns = []
    for t, perm in enumerate(perms):
        p = slice(None) if perm is None else perm
        columns += [c[p, t * PROBES : (t + 1) * PROBES] for c in circuits]
        columns += [x[p].reshape(x.shape[0], -1) for x in rows]
    stacked = np.concatenate(columns, axis=1, dtype=np.float32)
    projected = stacked if projection is None else matmul(projection.T, stacked)
    for t, block in enumerate(np.split(projected, len(perms), axis=1)):
        feats[t].append(block.ravel())


def _load(x: Any) -> np.ndarray:
    return x.load() if hasattr(x, "load") else x


def _float32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _projection(d: int) -> np.ndarray | None:
    """``[d, PROJECTED]`` fixed Gaussian projection (columns ~unit norm) where it at least halves the
    residual width; None (the features are the weights themselves) below that."""
    if d <= 2 * PROJECTED:
        return None
    rng = np.random.default_rng(20_241_129)
    return (rng.standard_normal((d, PROJECTED)) / np.sqrt(PROJECTED)).astype(np.float32)


def _rows_times(w: np.ndarray, q: np.ndarray | None, out: np.ndarray) -> None:
    """``out = w @ q`` (``w`` for q None) streamed over row blocks of ``w`` (a mapped view stays
    unread until its block)."""
    step = max(1, BLOCK // max(1, w.shape[1]))
    for start in range(0, w.shape[0], step):
        block = w[start : start + step]
        out[start : start + step] = _float32(block) if q is None else matmul(block, q)
        drop_pages(block)


def _cols_times(w: np.ndarray, q: np.ndarray | None, out: np.ndarray) -> None:
    """``out = w.T @ q`` (``w.T`` for q None) streamed over row blocks of ``w``."""
    step = max(1, BLOCK // max(1, w.shape[1]))
    if q is not None:
        out[:] = 0
    for start in range(0, w.shape[0], step):
        block = w[start : start + step]
        if q is None:
            out[:, start : start + step] = _float32(block).T
        else:
            out += matmul(block.T, q[start : start + step])
        drop_pages(block)


def match(
    suspect: Arrays,
    reference: Arrays,
    featurize: Featurizer,
    *,
    group: str,
    layer: int | None = None,
    draws: int = NULL_DRAWS,
    seed: int = 0,
) -> Matching:
    """Match suspect units to reference units and test the matching (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    fs, non_finite = _unit_rows(next(featurize(suspect, [None])))
    total = fs.shape[0]
    # Large groups: a random subset of suspect units, matched against every reference unit
    # (rectangular assignment, O(k^2 n)); the report states how many were matched.
    picked = np.sort(rng.choice(total, MAX_UNITS, replace=False)) if total > MAX_UNITS else np.arange(total)
    fs = fs[picked]
    d = _residual_size(reference)
    perms = [None] + [rng.permutation(d) for _ in range(draws)]
    found = []
    fs.setflags(write=False)  # read-only: on a device, uploaded once for every draw, as the weights
    with resident():
        for features in featurize(reference, perms):  # one draw's features in memory at a time
            n_ref = features.shape[0]
            units, bad = _unit_rows(features)
            if not found:  # the reference as stored; the null draws hold the same values
                non_finite += bad
            del features
            cost = matmul(fs, units.T)
            del units
            np.negative(cost, out=cost)
            rows, cols = linear_sum_assignment(cost)  # minimising -similarity: no copy for maximize
            found.append((-float(cost[rows, cols].mean()), cols[np.argsort(rows)]))
    (observed, cols), null = found[0], [similarity for similarity, _ in found[1:]]
    return Matching(
        group=group,
        layer=layer,
        units=int(picked.size),
        total=int(total),
        reference_units=int(n_ref),
        matched_similarity=observed,
        null_similarity=float(np.mean(null)),
        identity_fraction=float(np.mean(cols == picked)),
        identity=identity_test(cols, picked),
        similarity=prediction_test(observed, null),
        seconds=time.perf_counter() - start,
        non_finite=non_finite,
    )


def _unit_rows(features: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows centred and scaled to unit length, so that their products are cosines (float32: the
    assignment needs cosines to ~1e-6, and the similarity matrix is the largest product here); and
    how many entries were NaN/Inf (set to 0: the assignment refuses a cost matrix that is not finite)."""
    x = np.array(features, dtype=np.float32)  # one copy, then in place: features can be large
    bad = ~np.isfinite(x)
    non_finite = int(np.count_nonzero(bad))
    if non_finite:
        x[bad] = 0.0
    x -= x.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))[:, None]  # no squared copy
    x /= np.where(norms > 0, norms, 1.0)
    return x, non_finite


def _residual_size(arrays: Arrays) -> int:
    """Size of the residual-stream axis: the input axis of gate/up/q/k/v, the output axis of down/o."""
    for role, axis in (
        ("mlp.up.weight", 1),
        ("mlp.gate.weight", 1),
        ("attn.q.weight", 1),
        ("attn.k.weight", 1),
        ("mlp.down.weight", 0),
        ("attn.o.weight", 0),
        ("expert.down.weight.0", 0),
    ):
        if role in arrays:
            return int(arrays[role].shape[axis])
    raise ValueError("no tensor with a residual-stream axis in this group")


# -- a component's layers, one at a time -----------------------------------------------------------

MAX_MATCHED_LAYERS = 8  # layers per component given to unit matching (evenly spaced)

_HF_ROLE = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.weight$")
_ROLE_GROUP = {"q": "attn", "k": "attn", "v": "attn", "o": "attn", "gate": "mlp", "up": "mlp", "down": "mlp"}


def role_and_layer(pair) -> tuple[str, int | None]:
    """Canonical role and layer of a pair; falls back to Hugging Face names when roles are raw."""
    return canonical(pair.role, pair.layer, pair.suspect.name)


def canonical(role: str, layer: int | None, name: str) -> tuple[str, int | None]:
    if role.startswith(("attn.", "mlp.", "expert.", "router.", "norm.")):
        return role, layer
    m = _HF_ROLE.search(name)
    if m:
        return f"{_ROLE_GROUP[m.group(2)]}.{m.group(2)}.weight", int(m.group(1)) if layer is None else layer
    return role, layer


DECISIVE_LOG10_P = -12.0  # coordinate evidence this strong in every matrix leaves matching nothing to decide


def coordinates_decide(matrices: list[tuple[str, int | None, str, float]]) -> tuple[str, float] | None:
    """Why unit matching can be skipped for a component and the weakest deciding log10 p, or None
    when it is needed.

    ``matrices`` holds (role, layer, suspect name, log10 p of the coordinate test) per compared
    tensor. Matching looks for correspondence that a permutation of units hid from the coordinate
    test; where every attention, MLP and expert matrix of the matched layers already carries
    coordinate evidence past ``DECISIVE_LOG10_P``, their units were not permuted and the component's
    verdict cannot change, so the 17 matchings per layer are not paid for."""
    found = []
    for role, layer, name, log10_p in matrices:
        role, layer = canonical(role, layer, name)
        if layer is not None and role.endswith(".weight") and role.split(".")[0] in ("attn", "mlp", "expert"):
            found.append((layer, log10_p))
    weakest = max((p for _, p in found), default=0.0)
    if not found or weakest >= DECISIVE_LOG10_P:
        return None
    reason = (
        f"skipped: every attention/MLP/expert matrix of {len({layer for layer, _ in found})} layer(s) "
        f"({len(found)} matrices) has coordinate evidence below p = 1e{DECISIVE_LOG10_P:.0f}; unit "
        "matching could not change the verdict"
    )
    return reason, weakest


def match_component(
    pairs: list, suspect: ModelLayout, *, seed: int = 0, done: frozenset[tuple[str, int]] = frozenset()
) -> list[Matching]:
    """Unit matching on up to MAX_MATCHED_LAYERS layers of one component, one layer in memory at a
    time; the (group, layer) matchings in ``done`` were made otherwise and are left out."""
    by_layer: dict[int, list] = defaultdict(list)
    for pair in pairs:
        role, layer = role_and_layer(pair)
        if (
            layer is not None
            and role.endswith(".weight")
            and role.split(".")[0] in ("attn", "mlp", "expert", "router")
        ):
            by_layer[layer].append((role, pair))
    layers = sorted(by_layer)
    if len(layers) > MAX_MATCHED_LAYERS:
        layers = [layers[i] for i in np.linspace(0, len(layers) - 1, MAX_MATCHED_LAYERS).round().astype(int)]
    out = []
    for layer in layers:
        out.extend(_match_layer(layer, by_layer[layer], suspect, seed + layer, done))
    return out


def _match_layer(
    layer: int,
    entries: list,
    suspect: ModelLayout,
    seed: int,
    done: frozenset[tuple[str, int]] = frozenset(),
) -> list[Matching]:
    # Views, not values: the featurizers read them block by block (experts one at a time).
    s: dict[str, Any] = {}
    r: dict[str, Any] = {}
    heads = head_dim = None
    for role, pair in entries:
        key = (
            f"{role}.{pair.expert}"
            if role.startswith("expert.") and getattr(pair, "expert", None) is not None
            else role
        )
        if len(pair.suspect.shape) != 2 or tuple(pair.suspect.shape) != tuple(pair.reference.shape):
            continue
        s[key], r[key] = pair.suspect, pair.reference
        if role == "attn.q.weight":
            heads = getattr(pair, "n_heads", None) or _config_heads(suspect)
            head_dim = getattr(pair, "head_dim", None) or (s[key].shape[0] // heads if heads else None)
    out = []
    mlp = {k: v for k, v in s.items() if k.startswith("mlp.")}
    # Gate, up and down must chain: the same units and the same residual width, as [units, residual].
    if (
        mlp
        and ("mlp units", layer) not in done
        and len({tuple(v.shape[::-1] if k.startswith("mlp.down") else v.shape) for k, v in mlp.items()}) == 1
    ):
        out.append(
            match(mlp, {k: r[k] for k in mlp}, mlp_features, group="mlp units", layer=layer, seed=seed)
        )
    attn = {k: v for k, v in s.items() if k.startswith("attn.")}
    if (
        "attn.q.weight" in attn
        and ("attention heads", layer) not in done
        and heads
        and head_dim
        and heads * head_dim == attn["attn.q.weight"].shape[0]
        and heads >= 3
    ):
        feats = head_features(heads, head_dim, seed)
        out.append(
            match(attn, {k: r[k] for k in attn}, feats, group="attention heads", layer=layer, seed=seed)
        )
    experts = sorted({int(k.rsplit(".", 1)[1]) for k in s if k.startswith("expert.down.weight.")})
    if len(experts) >= 3 and experts == list(range(len(experts))):
        keys = [k for k in s if k.startswith(("expert.", "router."))]
        feats = expert_features(len(experts), seed)
        out.append(
            match(
                {k: s[k] for k in keys},
                {k: r[k] for k in keys},
                feats,
                group="experts",
                layer=layer,
                seed=seed,
            )
        )
    return out


def _units(role: str, w: np.ndarray) -> int:
    return w.shape[1] if role.startswith("mlp.down") else w.shape[0]


def _config_heads(model: ModelLayout) -> int | None:
    config = getattr(model.checkpoint, "config", lambda: None)() or {}
    for key in ("num_attention_heads", "n_head", "num_heads"):
        if isinstance(config.get(key), int):
            return config[key]
    return None
