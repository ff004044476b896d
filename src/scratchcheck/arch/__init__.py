"""Split a model into components (vision tower, language model, ...) and give tensors canonical roles."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..io.base import Checkpoint


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # vision | audio | projector | language_model | embeddings | head | extra | other
    tensors: tuple[str, ...]
    params: int


@dataclass(frozen=True)
class ModelLayout:
    checkpoint: Checkpoint
    components: list[Component] = field(default_factory=list)

    def component_of(self, name: str) -> str:
        for component in self.components:
            if name in component.tensors:
                return component.name
        return "other"


def layout(checkpoint: Checkpoint) -> ModelLayout:
    """The model as one component (stand-in until conventions are data)."""
    weights = checkpoint.weights()
    whole = Component(
        "model", "language_model", tuple(i.name for i in weights), sum(i.numel for i in weights)
    )
    return ModelLayout(checkpoint, [whole])
