"""Shape-faithful miniatures of the real disputes, saved as checkpoints, for the alignment tests.

``synthetic`` builds the LLaMA decoder and the Qwen2.5-VL tower; what it does not cover is here:
the HyperCLOVA X-style VLM around a tower, GLM/Solar-style MoE decoders with their own head counts
and expert widths, and a model with a sinusoidal table and an ``inv_freq`` buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from scratchcheck import synthetic as S
from scratchcheck.arch import ModelLayout, layout
from scratchcheck.io import open_model

Weights = dict[str, np.ndarray]
VISION = {"depth": 4, "hidden": 64, "heads": 4, "intermediate": 96, "out_hidden": 64}
VISION_CONFIG = {"model_type": "qwen2_5_vl", "depth": 4, "hidden_size": 64, "num_heads": 4}


def linear(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)


def hcx_vlm(tower: Weights, seed: int) -> Weights:
    """A HyperCLOVA X SEED-style VLM whose vision tower is ``tower`` (Qwen2.5-VL names under ``visual.``).

    The language model has the tower's width, so shapes coincide and only content can tell them apart."""
    weights = S.rename_prefix(tower, "visual.", "model.vision_model.")
    weights |= S.projector(seed, inp=64, out=64)
    decoder = S.llama_decoder(seed, layers=2, hidden=64, heads=4, kv_heads=2, intermediate=96, vocab=128)
    decoder = S.rename_prefix(decoder, "model.", "model.language_model.model.")
    weights |= S.rename_prefix(decoder, "lm_head.", "model.language_model.lm_head.")
    return weights


def moe_decoder(
    seed: int,
    *,
    heads: int,
    head_dim: int,
    expert_width: int,
    vocab: int,
    mtp: bool,
    layers: int = 3,
    hidden: int = 64,
    kv_heads: int = 2,
    experts: int = 4,
) -> Weights:
    """A GLM-4.5 / Solar-Open-style MoE decoder: q/o sized by heads x head_dim (not the hidden size),
    routed and shared experts, and (``mtp``) a multi-token-prediction block saved as layer N."""
    rng = np.random.default_rng(seed)
    w: Weights = {"model.embed_tokens.weight": linear(rng, vocab, hidden)}
    for i in range(layers + int(mtp)):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = linear(rng, heads * head_dim, hidden)
        w[p + "self_attn.k_proj.weight"] = linear(rng, kv_heads * 16, hidden)
        w[p + "self_attn.v_proj.weight"] = linear(rng, kv_heads * 16, hidden)
        w[p + "self_attn.o_proj.weight"] = linear(rng, hidden, heads * head_dim)
        w[p + "mlp.gate.weight"] = linear(rng, experts, hidden)
        for e in range(experts):
            q = f"{p}mlp.experts.{e}."
            w[q + "gate_proj.weight"] = linear(rng, expert_width, hidden)
            w[q + "up_proj.weight"] = linear(rng, expert_width, hidden)
            w[q + "down_proj.weight"] = linear(rng, hidden, expert_width)
        for part, shape in (
            ("gate", (expert_width, hidden)),
            ("up", (expert_width, hidden)),
            ("down", (hidden, expert_width)),
        ):
            w[f"{p}mlp.shared_experts.{part}_proj.weight"] = linear(rng, *shape)
        if i == layers:
            w[p + "eh_proj.weight"] = linear(rng, hidden, 2 * hidden)
            w[p + "enorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
            w[p + "hnorm.weight"] = (1 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
    w["model.norm.weight"] = (1.5 + 0.05 * rng.standard_normal(hidden)).astype(np.float32)
    w["lm_head.weight"] = linear(rng, vocab, hidden)
    return w


def sinusoidal_table(positions: int, dim: int) -> np.ndarray:
    """Whisper's fixed position table: sin then cos of log-spaced frequencies."""
    increment = np.log(10000) / (dim // 2 - 1)
    scaled = np.arange(positions)[:, None] * np.exp(-increment * np.arange(dim // 2))[None, :]
    return np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1).astype(np.float32)


def inv_freq(head_dim: int, base: float = 10000.0) -> np.ndarray:
    return (1.0 / base ** (np.arange(0, head_dim, 2) / head_dim)).astype(np.float32)


@pytest.fixture
def save(tmp_path: Path) -> Callable[..., Path]:
    """``save(name, weights, config=None)`` writes a model folder and returns its path."""

    def _save(name: str, weights: Weights, config: dict | None = None) -> Path:
        return S.save(weights, tmp_path / name, config)

    return _save


@pytest.fixture
def opened() -> Callable[[Path], ModelLayout]:
    """``opened(path)`` gives the layout of a saved model (closed when the test ends)."""
    checkpoints = []

    def _open(path: Path) -> ModelLayout:
        checkpoints.append(open_model(path))
        return layout(checkpoints[-1])

    yield _open
    for checkpoint in checkpoints:
        checkpoint.close()


@pytest.fixture
def build() -> SimpleNamespace:
    """The builders above, for tests (conftest modules are not importable by name)."""
    return SimpleNamespace(
        hcx_vlm=hcx_vlm,
        moe_decoder=moe_decoder,
        sinusoidal_table=sinusoidal_table,
        inv_freq=inv_freq,
        linear=linear,
        vision=VISION,
        vision_config=VISION_CONFIG,
    )
