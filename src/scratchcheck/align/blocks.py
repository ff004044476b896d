"""Recurrent weights are compared gate block by gate block.

LSTM and GRU weights and biases stack their gates (input, forget, cell, output; reset, update, new)
along one axis, and every trained model gives each gate its own mean and scale: the forget gate's
bias sits high, the others near zero. Two independent models therefore "correlate" through the
shared block pattern alone (r ~ 0.2 on real LSTM biases). Units inside a gate block are exchangeable
across training runs, so each block is its own tensor here: centred on its own, with a null that
rotates or shuffles inside the block only. Blocks are cut twice as fine as the gates when the axis
allows (ONNX stores both biases of a gate in one ``[2 * gates * hidden]`` vector); a finer cut of
exchangeable units only costs degrees of freedom.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from ..io.views import TensorView

if TYPE_CHECKING:
    from .pairing import TensorPair

_RECURRENT = re.compile(r"lstm|gru|(?:^|[._])rnn|weight_[ih]h|bias_[ih]h|recurrent", re.IGNORECASE)
_TORCH_PARAM = re.compile(r"(weight|bias)_(ih|hh)")


def split_gates(pairs: list[TensorPair]) -> list[TensorPair]:
    """Every learned recurrent pair as one pair per gate block; other pairs unchanged."""
    out = []
    for pair in pairs:
        gates = (_gates(pair.suspect) or _gates(pair.reference)) if pair.learned else 0
        out.extend(_blocks(pair, gates) if gates > 1 else [pair])
    return out


def _gates(view: TensorView) -> int:
    """Gates stacked in a recurrent tensor (0: not recurrent or not known)."""
    if not _RECURRENT.search(view.name):
        return 0
    lower = view.name.lower()
    if "gru" in lower:
        return 3
    if "lstm" in lower:
        return 4
    # torch's nn.RNN / GRU / LSTM names say nothing of the cell: weight_hh is [gates * hidden, hidden].
    sibling = _TORCH_PARAM.sub("weight_hh", view.name)
    try:
        shape = view.checkpoint.info(sibling).shape
    except (KeyError, ValueError):
        return 0
    return shape[0] // shape[1] if len(shape) == 2 and shape[1] and shape[0] % shape[1] == 0 else 0


def _blocks(pair: TensorPair, gates: int) -> list[TensorPair]:
    shape = pair.suspect.shape
    # ONNX keeps a leading num_directions axis: W [dirs, G*H, in], R [dirs, G*H, H], B [dirs, 2*G*H].
    directional = len(shape) == 3 or (len(shape) == 2 and shape[0] in (1, 2) and shape[1] >= 8 * gates)
    directions = range(shape[0]) if directional else [None]
    axis_len = shape[1] if directional else shape[0]
    count = 2 * gates if axis_len % (2 * gates) == 0 else gates
    if axis_len % count:
        return [pair]
    step = axis_len // count
    out = []
    for d in directions:
        for b in range(count):
            ops = ((("index", d),) if d is not None else ()) + (("rows", b * step, (b + 1) * step),)
            where = f"gate block {b + 1}/{count}" + (f", direction {d}" if d is not None else "")
            out.append(
                replace(
                    pair,
                    suspect=_sub(pair.suspect, ops, where),
                    reference=_sub(pair.reference, ops, where),
                    transform="; ".join(t for t in (pair.transform, where) if t),
                )
            )
    return out


def _sub(view: TensorView, ops: tuple, where: str) -> TensorView:
    shape = view.shape[1:] if ops[0][0] == "index" else view.shape
    rows = ops[-1][2] - ops[-1][1]
    return replace(
        view,
        shape=(rows, *shape[1:]),
        label=f"{view.label or view.name} [{where}]",
        ops=view.ops + ops,
    )
