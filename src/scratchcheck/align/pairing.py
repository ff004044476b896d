"""Pair suspect tensors with reference tensors, component by component.

In order: (1) each suspect component meets the reference component of the same name or kind;
(2) per role, the i x j layer similarity matrix (on sketches) gives the layer map; (3) tensors pair
by canonical role, layer (through the map) and expert, and must have the same normalised shape,
else they are *not comparable*; (4) whatever is left pairs by content. Non-learned tensors are set
aside first with their reason, and extra modules (MTP blocks) never meet ordinary layers.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..arch import Entry, ModelLayout
from ..io.views import TensorView, transposed
from ..results import LayerMatrix, NotComparable
from .blocks import split_gates
from .contentmatch import match_by_content
from .experts import dense_counterparts
from .gqa import SIBLING, head_groups
from .layermap import NO_MAP, LayerMap, infer
from .nonlearned import nonlearned
from .sketch import Sketcher, similarity
from .vocab import RowAlignment, Vocabularies, align_rows, rows_view

if TYPE_CHECKING:
    from ..evidence.disguises import Disguise

__all__ = ["Alignment", "TensorPair", "TensorView", "align"]


@dataclass(frozen=True)
class TensorPair:
    suspect: TensorView
    reference: TensorView
    suspect_component: str
    reference_component: str
    role: str
    layer: int | None = None
    reference_layer: int | None = None
    paired_by: str = "name"  # name | role | content | upcycled (an expert with the dense MLP) | heads-pooled
    learned: bool = True
    excluded_reason: str | None = None
    transform: str = ""
    expert: int | None = None
    n_heads: int | None = None  # heads of an attention weight (row blocks of q/k/v, column blocks of o)
    head_dim: int | None = None


@dataclass
class Alignment:
    pairs: list[TensorPair] = field(default_factory=list)
    component_pairs: list[tuple[str, str | None]] = field(default_factory=list)
    unpaired_suspect: list[str] = field(default_factory=list)
    unpaired_reference: list[str] = field(default_factory=list)
    not_comparable: list[NotComparable] = field(default_factory=list)
    layer_matrices: list[LayerMatrix] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (stored tensor, why not learned)
    vocab: list[tuple[str, RowAlignment]] = field(default_factory=list)  # (suspect component, rows paired)
    disguise: Disguise | None = None  # set by ``evidence.disguises.undo`` when one was undone


def align(suspect: ModelLayout, reference: ModelLayout, *, component: str | None = None) -> Alignment:
    """Pair the tensors of ``suspect`` with those of ``reference`` (only ``component`` if given:
    a suspect component name or kind)."""
    s_sk, r_sk = Sketcher(suspect.checkpoint), Sketcher(reference.checkpoint)
    s_buffers, r_buffers = nonlearned(suspect, s_sk), nonlearned(reference, r_sk)
    chosen = [c.name for c in suspect.components if component in (None, c.name, c.kind)]
    component_pairs = pair_components(suspect, reference, chosen)
    targets = {r for _, r in component_pairs if r is not None}
    s_entries = [e for e in suspect.entries if e.component in chosen and not _excluded(e, s_buffers)]
    r_entries = [
        e
        for e in reference.entries
        if (component is None or not targets or e.component in targets) and not _excluded(e, r_buffers)
    ]
    result = Alignment(component_pairs=component_pairs)
    result.excluded = [(n, why) for n, why in s_buffers.items() if suspect.component_of(n) in chosen]
    result.excluded += [(n, why) for n, why in r_buffers.items() if n not in s_buffers]
    used: set[int] = set()  # ids of entries already paired or judged not comparable
    vocabularies = Vocabularies(suspect.checkpoint, reference.checkpoint)
    for s_comp, r_comp in component_pairs:
        if r_comp is None:
            continue
        mine = [e for e in s_entries if e.component == s_comp]
        theirs = [e for e in r_entries if e.component == r_comp]
        layer_map, matrices = layer_correspondence(s_comp, mine, theirs, s_sk, r_sk)
        result.layer_matrices += matrices
        _pair_by_role(mine, theirs, layer_map, result, used, vocabularies)
        for s, r in dense_counterparts(mine, theirs, layer_map, used):  # upcycled experts
            used.update((id(s), id(r)))
            result.pairs.append(_pair(s, r, s.view, "upcycled"))
    _pair_by_content(
        [e for e in s_entries if id(e) not in used],
        [e for e in r_entries if id(e) not in used],
        suspect,
        reference,
        (s_sk, r_sk),
        result,
        used,
    )
    result.pairs = split_gates(result.pairs)
    result.unpaired_suspect = _labels(e for e in s_entries if id(e) not in used)
    result.unpaired_reference = _labels(e for e in r_entries if id(e) not in used)
    result.component_pairs = _fill_component_pairs(component_pairs, result.pairs)
    return result


def _excluded(entry: Entry, buffers: dict[str, str]) -> bool:
    return any(name in buffers for name in entry.view.sources)


def pair_components(
    suspect: ModelLayout, reference: ModelLayout, chosen: list[str]
) -> list[tuple[str, str | None]]:
    """Each chosen suspect component with the reference component of the same name, else the
    same kind (prefixes differ between families); extra modules only ever meet extra modules."""
    taken: set[str] = set()
    out: list[tuple[str, str | None]] = []
    by_name = {c.name: c for c in reference.components}
    for comp in (c for c in suspect.components if c.name in chosen):
        match = by_name.get(comp.name)
        if (match is None or match.kind != comp.kind or match.name in taken) and comp.kind not in {
            "other",
            "extra",
        }:
            match = next(
                (c for c in reference.components if c.kind == comp.kind and c.name not in taken), None
            )
        if match is not None and match.kind == comp.kind and match.name not in taken:
            taken.add(match.name)
            out.append((comp.name, match.name))
        else:
            out.append((comp.name, None))
    return out


def layer_correspondence(
    component: str, mine: list[Entry], theirs: list[Entry], s_sk: Sketcher, r_sk: Sketcher
) -> tuple[LayerMap, list[LayerMatrix]]:
    """Per role, the i x j sketch-similarity matrix; the layer map read from all roles together."""
    s_roles, r_roles = _by_role_and_layer(mine), _by_role_and_layer(theirs)
    matrices, grids, noises = [], {}, {}
    for role in sorted(set(s_roles) & set(r_roles)):
        s_layers, r_layers = sorted(s_roles[role]), sorted(r_roles[role])
        shapes = {e.view.shape for e in (*s_roles[role].values(), *r_roles[role].values())}
        if len(s_layers) < 2 or len(r_layers) < 2 or len(shapes) != 1:
            continue
        s_sketches = [s_sk.get(s_roles[role][i].view) for i in s_layers]
        values = similarity(s_sketches, [r_sk.get(r_roles[role][j].view) for j in r_layers])
        noise = 1 / math.sqrt(max(s_sketches[0].n - 1, 1))
        found = infer(values, s_layers, r_layers, noise)
        matrices.append(
            LayerMatrix(
                component,
                role,
                s_layers,
                r_layers,
                values.round(4).tolist(),
                metric="sketch-pearson",
                layer_map=found.kind,
                mapping=[list(p) for p in found.mapping],
            )
        )
        grids.setdefault((tuple(s_layers), tuple(r_layers)), []).append(values)
        noises.setdefault((tuple(s_layers), tuple(r_layers)), []).append(noise)
    if not grids:
        return NO_MAP, matrices
    # The consensus over roles: the mean matrix on the grid most roles share; averaging k roles
    # shrinks the chance level by sqrt(k).
    grid = max(grids, key=lambda g: len(grids[g]))
    mean = np.mean(grids[grid], axis=0)
    noise = math.sqrt(sum(n * n for n in noises[grid])) / len(noises[grid])
    return infer(mean, list(grid[0]), list(grid[1]), noise), matrices


def _by_role_and_layer(entries: list[Entry]) -> dict[str, dict[int, Entry]]:
    out: dict[str, dict[int, Entry]] = {}
    for e in entries:
        if e.layer is not None and e.expert is None:
            out.setdefault(e.role, {})[e.layer] = e
    return out


def _pair_by_role(
    mine: list[Entry],
    theirs: list[Entry],
    layer_map: LayerMap,
    result: Alignment,
    used: set[int],
    vocabularies: Vocabularies,
) -> None:
    index: dict[tuple, Entry] = {}
    for e in theirs:
        index.setdefault((e.role, e.layer, e.expert), e)
    own = {(e.role, e.layer, e.expert): e for e in mine}
    for s in mine:
        layer = s.layer
        if layer is not None and layer_map.kind != "none":
            layer = layer_map.target(layer)
            if layer is None:
                continue  # the map says this layer has no counterpart
        r = index.get((s.role, layer, s.expert))
        # A repeated layer (depth up-scaling) is the source of several suspect layers.
        if r is None or (id(r) in used and not layer_map.repeats):
            continue
        used.update((id(s), id(r)))
        rows = align_rows(s, r, vocabularies) if s.view.shape != r.view.shape else None
        if rows is not None:  # the vocabulary changed: kept rows pair by token, value or position
            result.vocab.append((s.component, rows))
            s_view = rows_view(s.view, rows.suspect_rows, rows.describe())
            result.pairs.append(_pair(s, r, s_view, "role", rows_view(r.view, rows.reference_rows, "")))
            continue
        sibling_role = SIBLING.get(s.role)
        sibling = (own.get((sibling_role, s.layer, s.expert)), index.get((sibling_role, layer, s.expert)))
        groups = head_groups(s, r, sibling) if s.view.shape != r.view.shape else None
        if groups is not None:  # GQA conversion: each key/value head meets its pooled group
            result.pairs.append(_pair(s, r, s.view, "heads-pooled", groups.view(r.view)))
            continue
        if s.view.shape != r.view.shape:
            result.not_comparable.append(
                NotComparable(
                    s.view.label or s.view.name,
                    r.view.label or r.view.name,
                    f"{s.role}: shape {list(s.view.shape)} vs {list(r.view.shape)}",
                    s.view.numel,
                )
            )
            continue
        same_name = s.view.name == r.view.name and not s.view.ops and not r.view.ops
        result.pairs.append(_pair(s, r, s.view, "name" if same_name else "role"))


def _pair_by_content(
    mine: list[Entry],
    theirs: list[Entry],
    suspect: ModelLayout,
    reference: ModelLayout,
    sketchers: tuple[Sketcher, Sketcher],
    result: Alignment,
    used: set[int],
) -> None:
    def compatible(s: Entry, r: Entry) -> bool:
        s_kind, r_kind = suspect.kind_of(s.component), reference.kind_of(r.component)
        if "extra" in (s_kind, r_kind):
            return s_kind == r_kind
        return s_kind == r_kind or "other" in (s_kind, r_kind)

    for match in match_by_content(mine, theirs, *sketchers, compatible):
        s, r = match.suspect, match.reference
        used.update((id(s), id(r)))
        view = transposed(s.view) if match.transposed else s.view
        result.pairs.append(_pair(s, r, view, "content"))


def _pair(s: Entry, r: Entry, s_view: TensorView, how: str, r_view: TensorView | None = None) -> TensorPair:
    known = r if r.generic is False or s.generic else s  # a convention's role over a fallback one
    r_view = r_view or r.view
    transform = "; ".join(
        f"{side} {t}" for side, t in (("suspect", s_view.transform), ("reference", r_view.transform)) if t
    )
    return TensorPair(
        s_view,
        r_view,
        s.component,
        r.component,
        role=known.role,
        layer=s.layer,
        reference_layer=r.layer,
        paired_by=how,
        transform=transform,
        expert=s.expert if s.expert is not None else r.expert,
        n_heads=s.n_heads or r.n_heads,
        head_dim=s.head_dim or r.head_dim,
    )


def _labels(entries) -> list[str]:
    return list(dict.fromkeys(e.view.label or e.view.name for e in entries))


def _fill_component_pairs(
    component_pairs: list[tuple[str, str | None]], pairs: list[TensorPair]
) -> list[tuple[str, str | None]]:
    """A suspect component without a named counterpart takes the reference component most of its
    content-paired tensors came from."""
    out = []
    for s_comp, r_comp in component_pairs:
        if r_comp is None:
            found = Counter(p.reference_component for p in pairs if p.suspect_component == s_comp)
            r_comp = found.most_common(1)[0][0] if found else None
        out.append((s_comp, r_comp))
    return out
