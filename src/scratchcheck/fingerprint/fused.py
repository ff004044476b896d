"""Fused tensors (QKV, gate/up) sampled part by part, so that each canonical view of a fingerprint
holds exactly the positions a separate tensor of that part would keep.

Sampled by its stored shape, a fused ``[q + k + v, d]`` keeps other rows than separate ``[q, d]``,
``[k, d]`` and ``[v, d]`` do, and a fused model and a split copy of it would be compared on different
positions. The layout (``arch``) splits a fused tensor into row slices (after a transpose for
GPT-2's ``c_attn``); ``splits`` reads those slices back as the split of a stored axis, which
``sampling.sample_positions`` samples part by part. A fingerprint records the split and how many
indices of each part it kept (``split`` in a tensor record), so that its own layout finds each
part's rows in the stored sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sampling import Plan, Split, part_kept

if TYPE_CHECKING:
    from ..arch import ModelLayout


def splits(model: ModelLayout) -> dict[str, Split]:
    """Stored tensor -> its split, for every tensor the layout cuts into consecutive slices."""
    slices: dict[str, list[tuple[int, int, int]]] = {}
    for entry in model.entries:
        view = entry.view
        if view.parts or not view.ops or view.ops[-1][0] != "rows" or len(view.ops[-1]) != 3:
            continue
        base = view.ops[:-1]
        if base not in ((), (("T",),)):
            continue  # an expert of a stack, or another transform: sampled by its stored shape
        _, start, stop = view.ops[-1]
        slices.setdefault(view.name, []).append((1 if base else 0, start, stop))
    out = {}
    for name, found in slices.items():
        found.sort()
        axis = found[0][0]
        shape = model.checkpoint.info(name).shape
        edges = [start for _, start, _ in found] + [found[-1][2]]
        contiguous = all(a[2] == b[1] for a, b in zip(found, found[1:], strict=False))
        if (
            len(found) > 1
            and axis < len(shape)
            and {a for a, _, _ in found} == {axis}
            and contiguous
            and (edges[0], edges[-1]) == (0, shape[axis])
        ):
            out[name] = (axis, tuple(stop - start for _, start, stop in found))
    return out


def split_record(split: Split, ndim: int, plan: Plan) -> dict[str, Any]:
    """The ``split`` of a tensor record: the axis, each part's length and how many of it were kept."""
    axis, parts = split
    return {"axis": axis, "parts": list(parts), "kept": [part_kept(n, axis, ndim, plan).size for n in parts]}


def split_fits(record: dict[str, Any]) -> bool:
    """Whether a record's ``split`` (if any) fits its shape and sample: parts adding up to the split
    axis, kept counts adding up to the sample's, none larger than its part."""
    split = record.get("split")
    if split is None:
        return True
    axis, parts, kept = split["axis"], split["parts"], split["kept"]
    return (
        axis < len(record["shape"])
        and len(parts) == len(kept)
        and sum(parts) == record["shape"][axis]
        and sum(kept) == record["sample_shape"][axis]
        and all(k <= n for k, n in zip(kept, parts, strict=True))
    )


def split_of(record: dict[str, Any]) -> Split | None:
    """The split a tensor record was sampled with, if any."""
    split = record.get("split")
    return None if split is None else (split["axis"], tuple(split["parts"]))
