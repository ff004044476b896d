"""Geometry (heads, key/value heads, head size, layers, hidden size, model type) of each component.

Read from ``config.json`` (the sub-config of the component: ``vision_config``, ``audio_config``,
``text_config``...) or from GGUF metadata. Needed to split fused QKV with grouped-query attention,
to tell an MTP block stored as layer N from ordinary layers, and to let the statistics match heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..io.base import Checkpoint

_SUBCONFIGS = {
    "vision": ("vision_config", "visual", "vision_tower_config"),
    "audio": ("audio_config", "audio_encoder_config"),
    "language_model": ("text_config", "llm_config", "language_config"),
}
_HEADS = ("num_attention_heads", "num_heads", "n_head", "encoder_attention_heads")
_KV_HEADS = ("num_key_value_heads", "multi_query_group_num", "n_head_kv")
_LAYERS = ("num_hidden_layers", "depth", "n_layer", "num_layers", "encoder_layers")
_HIDDEN = ("hidden_size", "n_embd", "d_model", "dim")


@dataclass(frozen=True)
class Geometry:
    heads: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    layers: int | None = None
    hidden: int | None = None  # width of the residual stream
    model_type: str | None = None  # of the (sub-)config, or the GGUF architecture


def _first_int(config: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def gguf_metadata(checkpoint: Checkpoint) -> dict[str, Any]:
    """The key/value header of a GGUF checkpoint ({} for other formats)."""
    merged: dict[str, Any] = {}
    for tensor_file in checkpoint.files:
        merged.update(getattr(tensor_file, "metadata", None) or {})
    return merged


def model_type(checkpoint: Checkpoint) -> str | None:
    """``model_type`` of the config, or GGUF ``general.architecture``."""
    config = checkpoint.config() or {}
    value = config.get("model_type") or gguf_metadata(checkpoint).get("general.architecture")
    return value if isinstance(value, str) else None


def geometry(checkpoint: Checkpoint, kind: str) -> Geometry:
    """The geometry of the component of ``kind`` as the checkpoint's metadata states it."""
    config = checkpoint.config() or {}
    sub = next(
        (
            config[k]
            for k in _SUBCONFIGS.get("language_model" if kind == "extra" else kind, ())
            if isinstance(config.get(k), dict)
        ),
        config if kind in {"language_model", "extra"} else None,
    )
    if sub is not None:
        heads = _first_int(sub, _HEADS)
        return Geometry(
            heads,
            _first_int(sub, _KV_HEADS) or heads,
            _first_int(sub, ("head_dim",)),
            _first_int(sub, _LAYERS),
            _first_int(sub, _HIDDEN),
            sub.get("model_type") if isinstance(sub.get("model_type"), str) else None,
        )
    meta = gguf_metadata(checkpoint)
    arch = meta.get("general.architecture")
    if kind not in {"language_model", "extra"} or not isinstance(arch, str):
        return Geometry()
    heads, kv = meta.get(f"{arch}.attention.head_count"), meta.get(f"{arch}.attention.head_count_kv")
    heads = heads if isinstance(heads, int) else None
    kv = kv if isinstance(kv, int) else heads
    layers, hidden = meta.get(f"{arch}.block_count"), meta.get(f"{arch}.embedding_length")
    return Geometry(
        heads,
        kv,
        None,
        layers if isinstance(layers, int) else None,
        hidden if isinstance(hidden, int) else None,
        arch,
    )
