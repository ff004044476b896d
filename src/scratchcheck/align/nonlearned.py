"""Tensors that are not learned, and why: they are identical in independent models, so never evidence.

Found by name (``inv_freq``, ``position_ids``, masks: ``arch/data/nonlearned.json``) and by value:
integer buffers, constant tensors (an untouched initialisation), 0/1 masks, RoPE frequency
ladders, sinusoidal position tables and fixed DFT/STFT bases. Value checks look at a sketch
first and read the whole tensor only when the sketch already fits.
"""

from __future__ import annotations

import re

import numpy as np

from ..arch import ModelLayout
from ..arch.conventions import load_conventions
from ..io.base import TensorInfo
from ..io.mapping import released
from ..io.views import plain_view
from .sketch import Sketcher

_MAX_SCAN = 16_000_000  # elements: a sinusoid check reads the tensor; bigger ones are embeddings
_DSP_HINT = re.compile(r"stft|dft|fft|basis|filter|window|mel|fbank", re.IGNORECASE)
# Residual allowed: 5% of the column's amplitude, at least 2% of the table's (the error of an
# 8-bit quantised table); a learned column's residual is of the order of its own amplitude.
_TOLERANCE, _FLOOR = 5e-2, 2e-2


def nonlearned(model: ModelLayout, sketcher: Sketcher) -> dict[str, str]:
    """``{stored tensor name: reason}`` for every non-learned tensor of the model."""
    conventions = load_conventions()
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
                reason = _by_value(info, sketcher)
        if reason:
            found[info.name] = reason
    return found


def _by_value(info: TensorInfo, sketcher: Sketcher) -> str | None:
    checkpoint = sketcher.checkpoint
    [values] = sketcher.arrays((info.name,))
    if values.dtype.kind in "iub":
        return "integer buffer (indices or a mask), not a learned weight"
    sketch = sketcher.get(plain_view(checkpoint, info.name))
    if sketch.constant and info.numel > 1:
        first = np.asarray(values).reshape(-1)[0]
        if np.all(np.asarray(values) == first):
            return _constant(first)
    if info.numel > _MAX_SCAN or sketch.max_abs > 1.0 + 1e-3:
        return None
    if values.ndim == 1:
        return _rope_frequencies(np.asarray(values, dtype=np.float64))
    if sketch.binary and np.isin(np.asarray(values), (0.0, 1.0)).all():
        return "mask buffer (only 0 and 1), not a learned weight"
    if values.ndim == 2 and sinusoidal(values):
        if _DSP_HINT.search(info.name):
            return "fixed signal-processing basis (DFT/STFT filters): computed, not learned"
        return "sinusoidal position table: computed from a formula, not learned"
    if sinusoidal(values.reshape(-1, values.shape[-1]).T):
        return "fixed signal-processing basis (DFT/STFT filters): computed, not learned"
    return None


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


def _rope_frequencies(values: np.ndarray) -> str | None:
    """``1 / base ** (2i / d)``: starts at 1 and falls by one constant ratio."""
    if values.size < 4 or values[0] != 1.0 or (values <= 0).any():
        return None
    ratios = values[1:] / values[:-1]
    if ratios.max() < 1.0 and np.allclose(ratios, ratios[0], rtol=1e-3):
        return "RoPE inverse frequencies: computed from the config, not learned"
    return None


def sinusoidal(x: np.ndarray) -> bool:
    """Every column of ``x`` is a sampled sinusoid (of its own frequency and phase).

    A sinusoid obeys ``x[t+1] + x[t-1] = 2 cos(w) x[t]``; fit ``2 cos(w)`` per column and require
    the residual to vanish. The first 16 rows are tried before the whole tensor."""
    if x.shape[0] < 8 or x.shape[1] < 1:
        return False
    head = np.asarray(x[:16], dtype=np.float64)
    return _recurrence_holds(head) and _recurrence_holds(np.asarray(x, dtype=np.float64))


def _recurrence_holds(x: np.ndarray) -> bool:
    a, b = x[1:-1], x[2:] + x[:-2]
    aa = (a * a).sum(axis=0)
    factor = (a * b).sum(axis=0) / np.where(aa > 0, aa, 1.0)
    scale = np.abs(x).max(axis=0)
    live = (scale > 0) & (x.std(axis=0) > 0)
    if not live.any():
        return False
    residual = np.abs(b - factor * a).max(axis=0)
    fits = (residual <= np.maximum(_TOLERANCE * scale, _FLOOR * scale.max())) & (
        np.abs(factor) <= 2 + _TOLERANCE
    )
    oscillates = (np.abs(factor[live]) < 1.99).any()  # not merely a straight ramp
    return bool(fits[live].all() and oscillates)
