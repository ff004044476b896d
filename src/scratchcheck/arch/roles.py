"""Canonical roles of stored tensors, and the views that bring each into the normalised layout.

One stored tensor gives one entry, or several when it is fused (QKV, gate/up) or stacked (MoE
experts: llama.cpp's ``[E, out, in]``, and the ``[E, in, out]`` of GPT-OSS and Llama 4, whose fused
gate/up halves are concatenated (Llama 4) or alternate column by column (GPT-OSS)). Roles use the
spellings agreed with the statistics (``attn.q.weight``, ``mlp.up.weight``, ``expert.gate.weight``...); a tensor no rule knows gets a generic role: its name inside the component
with the block index replaced by ``{i}``, so two models that name it alike still pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..io.base import Checkpoint, TensorInfo
from ..io.views import Op, TensorView
from .conventions import Conventions, RoleRule
from .geometry import Geometry


@dataclass(frozen=True)
class Entry:
    """One tensor in the normalised layout with its place in the model."""

    view: TensorView
    component: str
    role: str
    layer: int | None = None
    expert: int | None = None
    generic: bool = False  # the role is the fallback (name with ``{i}``), not a known convention
    n_heads: int | None = None
    head_dim: int | None = None


@dataclass(frozen=True)
class Located:
    """Where a stored tensor sits: component, name inside it, block index and the rest of the name."""

    info: TensorInfo
    component: str
    kind: str
    local: str
    layer: int | None
    rest: str  # the name after ``<stack>.<i>.`` for block tensors, else the local name


def locate(info: TensorInfo, component: str, kind: str, local: str, conventions: Conventions) -> Located:
    match = conventions.block.match(local)
    if match is None:
        return Located(info, component, kind, local, None, local)
    return Located(info, component, kind, local, int(match.group("i")), match.group("rest"))


def entries_for(
    checkpoint: Checkpoint, place: Located, conventions: Conventions, geom: Geometry
) -> list[Entry]:
    """The entries one stored tensor contributes (none for the second half of a split pair)."""
    found = (
        conventions.block_role(place.rest) if place.layer is not None else conventions.top_role(place.local)
    )
    info = place.info
    if found is None:
        return [_entry(checkpoint, place, generic_role(place), info.shape, (), generic=True)]
    rule, match = found
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    expert = int(groups["e"]) if "e" in groups else None
    role = rule.role.replace("{p}", groups.get("p", "weight"))
    return _apply_layout(checkpoint, place, rule, role, expert, geom)


def generic_role(place: Located) -> str:
    if place.layer is None:
        return place.local
    return re.sub(rf"(^|\.){place.layer}\.", r"\1{i}.", place.local, count=1)


def _apply_layout(
    checkpoint: Checkpoint, place: Located, rule: RoleRule, role: str, expert: int | None, geom: Geometry
) -> list[Entry]:
    shape, layout = place.info.shape, rule.layout
    if layout in {"", "part"}:
        if layout == "part" and place.info.name.removesuffix(".1") in checkpoint:
            return []  # joined into the first part's entry
        return [_entry(checkpoint, place, role.replace("{part}", "qkv"), shape, (), expert=expert, geom=geom)]
    if layout == "transpose" and len(shape) == 2:
        return [_entry(checkpoint, place, role, shape[::-1], (("T",),), expert=expert, geom=geom)]
    if layout == "flatten" and len(shape) > 2:
        return [_entry(checkpoint, place, role, (shape[0], _prod(shape[1:])), (("flatten",),))]
    if layout == "join_temporal":
        return [_joined(checkpoint, place, role)]
    if layout.startswith("unstack_experts") and len(shape) in (2, 3):
        return _unstacked(checkpoint, place, rule, role, geom)
    base: tuple[Op, ...] = ()
    full = place.info.model_shape
    if layout == "transpose_split_qkv" and len(shape) == 2:
        base, shape, full = (("T",),), shape[::-1], full[::-1]
    sizes = _split_sizes(full[0], layout, geom)
    # A fingerprint holds a sample of each part (fingerprint.fused): the rows of each in the sample.
    kept = None if sizes is None else place.info.kept_parts(1 if base else 0, tuple(s for _, s in sizes))
    if sizes is None or kept is None:  # cannot split: keep it whole under the fused role
        fused = "qkv" if "qkv" in layout else "gate_up"
        return [_entry(checkpoint, place, role.replace("{part}", fused), shape, base, generic=True)]
    entries, start = [], 0
    for (part, size), rows in zip(sizes, kept, strict=True):
        ops = base + (("rows", start, start + rows),)
        full_numel = None if rows == size and shape == full else _prod((size, *full[1:]))
        entries.append(
            _entry(
                checkpoint,
                place,
                role.replace("{part}", part),
                (rows, *shape[1:]),
                ops,
                geom=geom,
                tag=part,
                full_numel=full_numel,
            )
        )
        start += rows
    return entries


def _unstacked(
    checkpoint: Checkpoint, place: Located, rule: RoleRule, role: str, geom: Geometry
) -> list[Entry]:
    """One entry per expert of a stacked ``[E, ...]`` tensor (and per half of a fused gate/up)."""
    shape = place.info.shape
    per_expert, full = shape[1:], place.info.model_shape[1:]
    base: tuple[Op, ...] = ()
    if len(per_expert) == 2 and rule.layout != "unstack_experts" and _stored_in_out(rule.layout, full, geom):
        base, per_expert, full = (("T",),), per_expert[::-1], full[::-1]
    parts: list[tuple[str, tuple[Op, ...], int]] = [("", (), per_expert[0])]
    if rule.layout == "unstack_experts_gate_up":
        rows, interleaved = per_expert[0], geom.model_type in rule.interleaved_for
        # A fingerprint holds a sample of each half (fingerprint.fused): the rows of each in it.
        kept = (
            None if full[0] % 2 else place.info.kept_parts(2 if base else 1, (full[0] // 2,) * 2, interleaved)
        )
        if kept is None:
            return [_entry(checkpoint, place, role.replace("{part}", "gate_up"), shape, (), generic=True)]
        gate, up = kept
        if interleaved:
            parts = [("gate", (("rows", 0, rows, 2),), gate), ("up", (("rows", 1, rows, 2),), up)]
        else:
            parts = [("gate", (("rows", 0, gate),), gate), ("up", (("rows", gate, rows),), up)]
    return [
        _entry(
            checkpoint,
            place,
            role.replace("{part}", part),
            (size, *per_expert[1:]),
            (("index", e),) + base + ops,
            expert=e,
            geom=geom,
            tag=f"expert {e} {part}".rstrip(),
        )
        for e in range(shape[0])
        for part, ops, size in parts
    ]


def _stored_in_out(layout: str, matrix: tuple[int, ...], geom: Geometry) -> bool:
    """Whether an expert's matrix is stored ``[in, out]``: known from the hidden size where the two
    axes differ (the residual stream is gate/up's input, down's output), else the GPT-OSS/Llama 4
    convention that the layout names."""
    if geom.hidden is None or matrix[0] == matrix[1] or geom.hidden not in matrix:
        return True
    hidden_axis_when_in_out = 0 if layout == "unstack_experts_gate_up" else 1
    return matrix[hidden_axis_when_in_out] == geom.hidden


def _split_sizes(rows: int, layout: str, geom: Geometry) -> list[tuple[str, int]] | None:
    """Row counts of the parts of a fused tensor: from head counts, else equal parts."""
    if layout == "split_gate_up":
        return [("gate", rows // 2), ("up", rows // 2)] if rows % 2 == 0 else None
    if geom.heads and geom.kv_heads and geom.kv_heads != geom.heads:
        head_dim = geom.head_dim or rows // (geom.heads + 2 * geom.kv_heads)
        q, kv = geom.heads * head_dim, geom.kv_heads * head_dim
        if q + 2 * kv == rows:
            return [("q", q), ("k", kv), ("v", kv)]
    return [("q", rows // 3), ("k", rows // 3), ("v", rows // 3)] if rows % 3 == 0 else None


def _joined(checkpoint: Checkpoint, place: Located, role: str) -> Entry:
    """A Conv3d patch embedding saved as two Conv2d halves (llama.cpp's mmproj) joined back."""
    info = place.info
    second = info.name + ".1"
    shape = info.shape
    if second not in checkpoint or checkpoint.info(second).shape != shape:
        return _entry(checkpoint, place, role, (shape[0], _prod(shape[1:])), (("flatten",),))
    parts = (info.name, second)
    view = TensorView(
        checkpoint, info.name, (shape[0], 2 * _prod(shape[1:])), info.name, (("join", 2), ("flatten",)), parts
    )
    return Entry(view, place.component, role, place.layer)


def _entry(
    checkpoint: Checkpoint,
    place: Located,
    role: str,
    shape: tuple[int, ...],
    ops: tuple[Op, ...],
    *,
    expert: int | None = None,
    generic: bool = False,
    geom: Geometry | None = None,
    tag: str = "",
    full_numel: int | None = None,
) -> Entry:
    name = place.info.name
    label = f"{name}[{tag}]" if tag else name
    heads, head_dim = _heads(role, shape, geom)
    view = TensorView(checkpoint, name, tuple(shape), label, ops, full_numel=full_numel)
    return Entry(view, place.component, role, place.layer, expert, generic, heads, head_dim)


def _heads(role: str, shape: tuple[int, ...], geom: Geometry | None) -> tuple[int | None, int | None]:
    """Heads of an attention tensor: row blocks of q/k/v, column blocks of o."""
    if geom is None or geom.heads is None or not role.startswith("attn."):
        return None, None
    part = role.split(".")[1]
    heads = {"q": geom.heads, "k": geom.kv_heads, "v": geom.kv_heads, "o": geom.heads}.get(part)
    if heads is None:
        return None, None
    width = shape[1] if part == "o" and len(shape) == 2 else shape[0]
    return (heads, width // heads) if width % heads == 0 else (None, None)


def _prod(values: tuple[int, ...]) -> int:
    out = 1
    for v in values:
        out *= v
    return out
