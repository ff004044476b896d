"""What a checkpoint holds, from headers and metadata alone: the ``inspect`` command's library side."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .arch import layout
from .io import Checkpoint, open_model
from .metadata import inspect_metadata
from .results import ComponentSummary, to_jsonable

INSPECT_SCHEMA = "scratchcheck.inspect/1"


@dataclass(frozen=True)
class PrefixShare:
    prefix: str
    params: int
    share: float
    tensors: int


@dataclass(frozen=True)
class ConfigEntry:
    """``model_type`` / ``architectures`` of a config file or one of its nested sub-configs."""

    file: str
    path: str  # JSON path inside the file, "$" for the top level
    model_type: str | None
    architectures: list[str] | None


@dataclass(frozen=True)
class ModelInspection:
    schema: str
    path: str
    format: str
    files: list[dict[str, Any]]
    tensors: int
    params: int
    dtypes: dict[str, int]
    prefixes: list[PrefixShare]
    configs: list[ConfigEntry]
    components: list[ComponentSummary]
    aux_tensors: int = 0
    metadata: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def inspect_model(
    source: str | os.PathLike[str] | Checkpoint, *, allow_network: bool = False
) -> ModelInspection:
    """Summarise a checkpoint without reading any tensor data."""
    if isinstance(source, Checkpoint):
        return _inspect(source)
    with open_model(source, allow_network=allow_network) as checkpoint:
        return _inspect(checkpoint)


def _inspect(checkpoint: Checkpoint) -> ModelInspection:
    weights = checkpoint.weights()
    total = checkpoint.num_params or 1
    model = layout(checkpoint)
    files = [{"path": str(f.path), "bytes": f.path.stat().st_size} for f in checkpoint.files]
    return ModelInspection(
        schema=INSPECT_SCHEMA,
        path=str(checkpoint.path),
        format=checkpoint.format,
        files=files,
        tensors=len(weights),
        params=checkpoint.num_params,
        dtypes=checkpoint.dtype_breakdown(),
        prefixes=top_level_prefixes(checkpoint),
        configs=config_entries(checkpoint),
        components=[
            ComponentSummary(c.name, c.kind, c.params, c.params / total, len(c.tensors))
            for c in model.components
        ],
        aux_tensors=len(checkpoint.tensors()) - len(weights),
        metadata=inspect_metadata(checkpoint).to_dict(),
    )


def top_level_prefixes(checkpoint: Checkpoint, depth: int = 2) -> list[PrefixShare]:
    """Parameters under each name prefix of up to ``depth`` dotted parts, stopping at block numbers.

    ``model.layers.3.mlp.up_proj.weight`` counts under ``model.layers``; ``visual.blocks.0...`` under
    ``visual.blocks``; ``lm_head.weight`` under ``lm_head``.
    """
    params: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for info in checkpoint.weights():
        parts = []
        for part in info.name.split(".")[:depth]:
            if part.isdigit():
                break
            parts.append(part)
        if len(parts) == len(info.name.split(".")):
            parts = parts[:-1] or parts  # a bare parameter name: its owner is the prefix
        prefix = ".".join(parts)
        params[prefix] += info.numel
        counts[prefix] += 1
    total = checkpoint.num_params or 1
    return [PrefixShare(p, n, n / total, counts[p]) for p, n in params.most_common()]


def config_entries(checkpoint: Checkpoint) -> list[ConfigEntry]:
    """Every (nested) dict in config.json that declares a ``model_type`` or ``architectures``."""
    config = checkpoint.config()
    if config is None:
        return []
    found: list[ConfigEntry] = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "model_type" in node or "architectures" in node:
                arch = node.get("architectures")
                found.append(
                    ConfigEntry(
                        "config.json",
                        path,
                        str(node["model_type"]) if node.get("model_type") is not None else None,
                        [str(a) for a in arch] if isinstance(arch, list) else None,
                    )
                )
            for key, value in node.items():
                visit(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{path}[{index}]")

    visit(config, "$")
    return found
