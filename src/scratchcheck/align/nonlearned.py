"""Tensors that are not learned, and why: they are identical in independent models, so never evidence.

Found by name (``inv_freq``, ``position_ids``, masks: ``arch/data/nonlearned.json``) and by value:
scalars, integer buffers, constant tensors (an untouched initialisation), and the computed tables
of ``fixedtables`` (DFT/STFT bases with or without a window, sinusoidal tables, filterbanks,
windows, frequency ladders and ALiBi slopes, position ranges, masks) in any layout and dtype.
"""

from __future__ import annotations

import numpy as np

from ..arch import ModelLayout
from ..arch.conventions import load_conventions
from ..io.base import TensorInfo
from ..io.mapping import gather, released
from ..io.views import plain_view
from . import fixedtables
from .sketch import Sketcher

_HEAD = 4096  # leading elements read at once to rule out a constant tensor
_MAX_SCAN = 16_000_000  # elements: the table checks read the tensor; bigger ones are embeddings
# Roles learned by construction (projections, routed and shared experts, routers): no formula table
# sits in one, so only the constant-tensor check applies (the table checks would read each whole).
LEARNED_ROLES = ("attn.", "mlp.", "expert.", "shared_expert.", "router.")


def nonlearned(model: ModelLayout, sketcher: Sketcher) -> dict[str, str]:
    """``{stored tensor name: reason}`` for every non-learned tensor of the model."""
    conventions = load_conventions()
    learned = learned_by_construction(model)
    found = {}
    for info in model.checkpoint.weights():
        reason = conventions.buffer_reason(info.name)
        if reason is None and len(info.shape) > 2 and not model.checkpoint.stored_as_is(info.name):
            # A quantised stack (MoE experts) is never dequantised whole: entry by entry, and only
            # the check that applies to a stack of matrices.
            reason = _constant_stack(info, sketcher)
        elif reason is None:
            # The value checks may scan a tensor; its pages go back afterwards so that scanning a
            # whole model does not leave the whole model resident.
            with released(*sketcher.arrays((info.name,))):
                reason = _by_value(info, sketcher, tables=info.name not in learned)
        if reason:
            found[info.name] = reason
    return found


def learned_by_construction(model: ModelLayout) -> set[str]:
    """Stored tensors behind a view whose role is learned by construction (``LEARNED_ROLES``)."""
    return {n for e in model.entries if e.role.startswith(LEARNED_ROLES) for n in e.view.sources}


def _by_value(info: TensorInfo, sketcher: Sketcher, *, tables: bool) -> str | None:
    if info.numel <= 1:
        return "a single value (scalar): carries no evidence"
    [values] = sketcher.arrays((info.name,))
    if values.dtype.kind in "iub":
        return "integer buffer (indices or a mask), not a learned weight"
    if not _head_varies(values) and sketcher.get(plain_view(sketcher.checkpoint, info.name)).constant:
        first = np.asarray(values).reshape(-1)[0]
        if np.all(np.asarray(values) == first):
            return _constant(first)
    if info.numel > _MAX_SCAN or not tables:
        return None
    return fixedtables.reason(np.asarray(values), info.name)


def _head_varies(values: np.ndarray) -> bool:
    """Two different values among the first ``_HEAD``: then the tensor is not constant, found with
    one read of contiguous bytes where the sketch costs a read per sampled element."""
    if not values.flags.c_contiguous or values.size < 2:
        return False
    head = values.reshape(-1)[:_HEAD]
    head = gather(head, (np.arange(head.size),))
    return bool(np.any(head != head[0]))


def _constant_stack(info: TensorInfo, sketcher: Sketcher) -> str | None:
    """The constant-tensor check of ``_by_value``, one entry of axis 0 at a time (stops at the first
    entry that varies, in practice the first)."""
    first = None
    for index in range(info.shape[0]):
        [values] = sketcher.arrays((info.name,), index)
        flat = np.asarray(values).reshape(-1)
        if not flat.size:
            continue
        first = flat[0] if first is None else first
        if not np.all(flat == first):
            return None
    return None if first is None or info.numel <= 1 else _constant(first)


def _constant(value: float) -> str:
    return f"constant tensor (every value {float(value):g}): an untouched initialisation"
