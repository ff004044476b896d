"""Pair suspect tensors with reference tensors (stand-in: same name and shape)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arch import ModelLayout
from .io.base import Checkpoint
from .results import NotComparable


@dataclass(frozen=True)
class TensorView:
    """One stored tensor as compared: its values in a normalised layout, read on demand."""

    checkpoint: Checkpoint
    name: str
    shape: tuple[int, ...]
    label: str = ""

    def load(self) -> np.ndarray:
        return self.checkpoint.read_values(self.name)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.checkpoint.info(self.name).nbytes


@dataclass(frozen=True)
class TensorPair:
    suspect: TensorView
    reference: TensorView
    suspect_component: str
    reference_component: str
    role: str
    layer: int | None = None
    reference_layer: int | None = None
    paired_by: str = "name"
    learned: bool = True
    excluded_reason: str | None = None
    transform: str = ""


@dataclass
class Alignment:
    pairs: list[TensorPair] = field(default_factory=list)
    component_pairs: list[tuple[str, str | None]] = field(default_factory=list)
    unpaired_suspect: list[str] = field(default_factory=list)
    unpaired_reference: list[str] = field(default_factory=list)
    not_comparable: list[NotComparable] = field(default_factory=list)


def align(suspect: ModelLayout, reference: ModelLayout, *, component: str | None = None) -> Alignment:
    s_ckpt, r_ckpt = suspect.checkpoint, reference.checkpoint
    result = Alignment(component_pairs=[(c.name, c.name) for c in suspect.components])
    r_names = {i.name for i in r_ckpt.weights()}
    paired = set()
    for info in s_ckpt.weights():
        if info.name not in r_names:
            result.unpaired_suspect.append(info.name)
            continue
        other = r_ckpt.info(info.name)
        paired.add(info.name)
        if other.shape != info.shape:
            result.not_comparable.append(
                NotComparable(info.name, other.name, f"shape {info.shape} vs {other.shape}", info.numel)
            )
            continue
        comp = suspect.component_of(info.name)
        result.pairs.append(
            TensorPair(
                TensorView(s_ckpt, info.name, info.shape),
                TensorView(r_ckpt, other.name, other.shape),
                comp,
                reference.component_of(other.name),
                role=info.name,
            )
        )
    result.unpaired_reference = [n for n in r_names if n not in paired]
    return result
