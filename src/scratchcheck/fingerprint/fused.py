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
    """Stored tensor -> its split, for every tensor the layout cuts into slices that tile one axis:
    consecutive (fused QKV, gate/up) or alternating (GPT-OSS's stacked gate/up), per expert alike."""
    slices: dict[str, set[tuple[int, int, int, int]]] = {}
    for entry in model.entries:
        view = entry.view
        ops = view.ops
        stack = 1 if ops and ops[0][0] == "index" else 0
        ops = ops[stack:]
        if view.parts or not ops or ops[-1][0] != "rows" or ops[:-1] not in ((), (("T",),)):
            continue
        _, start, stop, *step = ops[-1]
        axis = stack + (1 if ops[:-1] else 0)  # a transposed matrix is cut along its stored columns
        slices.setdefault(view.name, set()).add((axis, start, stop, step[0] if step else 1))
    out = {}
    for name, found in slices.items():
        axes, steps = {f[0] for f in found}, {f[3] for f in found}
        if len(found) < 2 or len(axes) != 1 or len(steps) != 1:
            continue
        [axis], [step] = axes, steps
        shape = model.checkpoint.info(name).shape
        if axis >= len(shape):
            continue
        cuts = sorted((start, stop) for _, start, stop, _ in found)
        length = shape[axis]
        if (
            step == 1
            and cuts[0][0] == 0
            and cuts[-1][1] == length
            and all(a[1] == b[0] for a, b in zip(cuts, cuts[1:], strict=False))
        ):
            out[name] = Split(axis, tuple(stop - start for start, stop in cuts))
        elif step == len(cuts) and length % step == 0 and cuts == [(p, length) for p in range(step)]:
            out[name] = Split(axis, (length // step,) * step, interleaved=True)
    return out


def split_record(split: Split, ndim: int, plan: Plan) -> dict[str, Any]:
    """The ``split`` of a tensor record: the axis, each part's length, how many of it were kept, and
    whether the parts alternate."""
    record: dict[str, Any] = {
        "axis": split.axis,
        "parts": list(split.parts),
        "kept": [part_kept(n, split.axis, ndim, plan).size for n in split.parts],
    }
    if split.interleaved:
        record["interleaved"] = True
    return record


def split_fits(record: dict[str, Any]) -> bool:
    """Whether a record's ``split`` (if any) fits its shape and sample: parts adding up to the split
    axis, kept counts adding up to the sample's, none larger than its part; alternating parts equal."""
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
        and (not split.get("interleaved") or len(set(parts)) == len(set(kept)) == 1)
    )


def split_of(record: dict[str, Any]) -> Split | None:
    """The split a tensor record was sampled with, if any."""
    split = record.get("split")
    if split is None:
        return None
    return Split(split["axis"], tuple(split["parts"]), bool(split.get("interleaved", False)))
