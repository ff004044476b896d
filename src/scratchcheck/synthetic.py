"""Shape-faithful miniature models and the derivations disputes are about, for the demo and tests.

Weights are random (Gaussian, scaled 1/sqrt(fan_in); norm gains around a chosen mean), named and
shaped like the real families: a LLaMA/Qwen-style decoder (optionally MoE, optionally with a
multi-token-prediction block saved as layer N) and a Qwen2.5-VL-style vision tower. The transforms
produce what a derived model looks like: fine-tuned, noised, permuted, layer-dropped, renamed,
rotated (a function-preserving change of the residual basis), quantised and back, or moved by a few
Adam steps.
Untrained weights are fine for testing structure; the lineage benchmark trains real models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .io.writer import write_safetensors

Weights = dict[str, np.ndarray]


def _linear(rng: np.random.Generator, out: int, inp: int) -> np.ndarray:
    return (rng.standard_normal((out, inp)) / np.sqrt(inp)).astype(np.float32)


def _gain(rng: np.random.Generator, n: int, mean: float, spread: float = 0.05) -> np.ndarray:
    return (mean + spread * rng.standard_normal(n)).astype(np.float32)


def llama_decoder(
    seed: int,
    *,
    layers: int = 4,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    vocab: int = 256,
    prefix: str = "model.",
    norm_mean: float = 1.0,
    experts: int = 0,
    expert_intermediate: int | None = None,
    mtp_layer: bool = False,
    tie_embeddings: bool = False,
) -> Weights:
    """A decoder in Hugging Face LLaMA/Qwen naming. ``experts`` > 0 gives MoE MLPs with a router."""
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    w: Weights = {
        f"{prefix}embed_tokens.weight": (0.02 * rng.standard_normal((vocab, hidden))).astype(np.float32)
    }
    for i in range(layers + (1 if mtp_layer else 0)):
        p = f"{prefix}layers.{i}."
        w[p + "input_layernorm.weight"] = _gain(rng, hidden, norm_mean)
        w[p + "self_attn.q_proj.weight"] = _linear(rng, heads * head_dim, hidden)
        w[p + "self_attn.k_proj.weight"] = _linear(rng, kv_heads * head_dim, hidden)
        w[p + "self_attn.v_proj.weight"] = _linear(rng, kv_heads * head_dim, hidden)
        w[p + "self_attn.o_proj.weight"] = _linear(rng, hidden, heads * head_dim)
        w[p + "post_attention_layernorm.weight"] = _gain(rng, hidden, norm_mean)
        if experts:
            width = expert_intermediate or intermediate
            w[p + "mlp.gate.weight"] = _linear(rng, experts, hidden)
            for e in range(experts):
                q = f"{p}mlp.experts.{e}."
                w[q + "gate_proj.weight"] = _linear(rng, width, hidden)
                w[q + "up_proj.weight"] = _linear(rng, width, hidden)
                w[q + "down_proj.weight"] = _linear(rng, hidden, width)
        else:
            w[p + "mlp.gate_proj.weight"] = _linear(rng, intermediate, hidden)
            w[p + "mlp.up_proj.weight"] = _linear(rng, intermediate, hidden)
            w[p + "mlp.down_proj.weight"] = _linear(rng, hidden, intermediate)
        if i == layers:  # the MTP block (DeepSeek-V3 / GLM-4.5 style) adds its own projections
            w[p + "eh_proj.weight"] = _linear(rng, hidden, 2 * hidden)
            w[p + "enorm.weight"] = _gain(rng, hidden, norm_mean)
            w[p + "hnorm.weight"] = _gain(rng, hidden, norm_mean)
    w[f"{prefix}norm.weight"] = _gain(rng, hidden, norm_mean * 1.5)
    if not tie_embeddings:
        w["lm_head.weight"] = (0.02 * rng.standard_normal((vocab, hidden))).astype(np.float32)
    return w


def llama_config(
    *,
    layers: int = 4,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    vocab: int = 256,
) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": intermediate,
        "vocab_size": vocab,
    }


def qwen25_vl_vision(
    seed: int,
    *,
    depth: int = 4,
    hidden: int = 64,
    heads: int = 4,
    intermediate: int = 128,
    out_hidden: int = 96,
    patch: int = 14,
    temporal_patch: int = 2,
    prefix: str = "visual.",
) -> Weights:
    """A Qwen2.5-VL vision tower: Conv3d patch embedding, fused qkv, SwiGLU MLP, 2x2 patch merger."""
    rng = np.random.default_rng(seed)
    fan_in = 3 * temporal_patch * patch * patch
    w: Weights = {
        f"{prefix}patch_embed.proj.weight": (
            rng.standard_normal((hidden, 3, temporal_patch, patch, patch)) / np.sqrt(fan_in)
        ).astype(np.float32)
    }
    for i in range(depth):
        p = f"{prefix}blocks.{i}."
        w[p + "norm1.weight"] = _gain(rng, hidden, 1.0)
        w[p + "attn.qkv.weight"] = _linear(rng, 3 * hidden, hidden)
        w[p + "attn.qkv.bias"] = (0.02 * rng.standard_normal(3 * hidden)).astype(np.float32)
        w[p + "attn.proj.weight"] = _linear(rng, hidden, hidden)
        w[p + "attn.proj.bias"] = (0.02 * rng.standard_normal(hidden)).astype(np.float32)
        w[p + "norm2.weight"] = _gain(rng, hidden, 1.0)
        w[p + "mlp.gate_proj.weight"] = _linear(rng, intermediate, hidden)
        w[p + "mlp.gate_proj.bias"] = (0.02 * rng.standard_normal(intermediate)).astype(np.float32)
        w[p + "mlp.up_proj.weight"] = _linear(rng, intermediate, hidden)
        w[p + "mlp.up_proj.bias"] = (0.02 * rng.standard_normal(intermediate)).astype(np.float32)
        w[p + "mlp.down_proj.weight"] = _linear(rng, hidden, intermediate)
        w[p + "mlp.down_proj.bias"] = (0.02 * rng.standard_normal(hidden)).astype(np.float32)
    merged = hidden * 4  # 2x2 spatial merge
    w[f"{prefix}merger.ln_q.weight"] = _gain(rng, hidden, 1.0)
    w[f"{prefix}merger.mlp.0.weight"] = _linear(rng, merged, merged)
    w[f"{prefix}merger.mlp.0.bias"] = (0.02 * rng.standard_normal(merged)).astype(np.float32)
    w[f"{prefix}merger.mlp.2.weight"] = _linear(rng, out_hidden, merged)
    w[f"{prefix}merger.mlp.2.bias"] = (0.02 * rng.standard_normal(out_hidden)).astype(np.float32)
    return w


def projector(seed: int, *, inp: int, out: int, prefix: str = "model.mm_projector.") -> Weights:
    """A two-layer MLP projector (LLaVA / HyperCLOVA X style)."""
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}0.weight": _linear(rng, out, inp),
        f"{prefix}0.bias": np.zeros(out, np.float32),
        f"{prefix}2.weight": _linear(rng, out, out),
        f"{prefix}2.bias": np.zeros(out, np.float32),
    }


# -- derivations ---------------------------------------------------------------------------------


def fine_tune(weights: Weights, strength: float = 0.05, seed: int = 0, rank: int = 2) -> Weights:
    """A fine-tune: each matrix moves by a low-rank update, some noise and a little weight decay.

    ``strength`` is the typical size of the change relative to the tensor's spread (0.05 is a light
    fine-tune, 0.5 heavy continued pre-training). As in real fine-tunes, the size varies from tensor
    to tensor (log-normally) and the update is partly aligned with the weights (decay shrinks them),
    which is what tells a fine-tune from a copy with uniform Gaussian noise added.
    """
    rng = np.random.default_rng(seed)
    out: Weights = {}
    for name, w in weights.items():
        spread = float(w.std() or 1.0)
        scale = strength * spread * float(np.exp(0.5 * rng.standard_normal()))
        centred = (w - w.mean()) / spread
        if w.ndim >= 2:
            flat = w.reshape(w.shape[0], -1)
            low_rank = rng.standard_normal((flat.shape[0], rank)) @ rng.standard_normal((rank, flat.shape[1]))
            delta = 0.8 * low_rank / np.sqrt(rank) + 0.4 * rng.standard_normal(flat.shape)
            delta -= 0.4 * centred.reshape(flat.shape)
            out[name] = (flat + scale * delta).reshape(w.shape).astype(w.dtype)
        else:
            out[name] = (w + scale * (rng.standard_normal(w.shape) - 0.4 * centred)).astype(w.dtype)
    return out


def noised(weights: Weights, rel_sigma: float = 1 / 700, seed: int = 0) -> Weights:
    """A copy with Gaussian noise of ``rel_sigma`` times each tensor's scale (Llama3-V style)."""
    rng = np.random.default_rng(seed)
    return {
        name: (w + rel_sigma * float(np.abs(w).mean() or 1.0) * rng.standard_normal(w.shape)).astype(w.dtype)
        for name, w in weights.items()
    }


def round_trip(
    values: np.ndarray, bits: int, block: int | None = None, *, asymmetric: bool = False
) -> np.ndarray:
    """``values`` rounded to a ``bits``-bit integer grid and back, as float32: one scale per row
    (``block`` None; a row is everything after the first axis, as per-channel int8) or per ``block``
    consecutive values (GGUF's Q8_0, Q4_0); absmax, or min and max with ``asymmetric`` (Q4_1)."""
    x = (values.reshape(-1, block) if block else values.reshape(values.shape[0], -1)).astype(np.float64)
    if asymmetric:
        low, high = x.min(1, keepdims=True), x.max(1, keepdims=True)
        step = np.where(high > low, (high - low) / (2**bits - 1), 1.0)
        return (np.round((x - low) / step) * step + low).reshape(values.shape).astype(np.float32)
    step = np.abs(x).max(1, keepdims=True) / (2 ** (bits - 1) - 1)
    step = np.where(step > 0, step, 1.0)
    return (np.round(x / step) * step).reshape(values.shape).astype(np.float32)


def adam_steps(values: np.ndarray, steps: int, lr: float, rng: np.random.Generator) -> np.ndarray:
    """What a few Adam steps leave, as float32: every value moved by about +-``lr`` a step, the
    signs correlated from step to step. As small and flat-topped as a rounding error, on no grid."""
    drift = rng.standard_normal(values.shape)
    moves = sum(np.sign(drift + rng.standard_normal(values.shape)) for _ in range(steps))
    return (values - lr * moves).astype(np.float32)


def permute_units(
    weights: Weights,
    seed: int = 0,
    *,
    prefix: str = "model.",
    heads: int = 4,
    kv_heads: int = 2,
    derange: bool = False,
) -> Weights:
    """Permute MLP units and attention heads of every layer: same function, disguised weights.

    Heads move in their key/value groups (grouped-query attention ties q heads to a kv head), and
    ``o_proj`` columns follow the q heads, so the network computes exactly what it did. With
    ``derange`` no unit, head or group keeps its place (each order is one cycle), so that no
    element-wise correspondence survives at all.
    """
    rng = np.random.default_rng(seed)

    def order(n: int) -> np.ndarray:
        p = rng.permutation(n)
        if not derange:
            return p
        cycle = np.empty_like(p)
        cycle[p] = np.roll(p, 1)
        return cycle

    out = dict(weights)
    layer_ids = sorted(
        {int(m.group(1)) for n in weights if (m := re.match(re.escape(prefix) + r"layers\.(\d+)\.", n))}
    )
    for i in layer_ids:
        p = f"{prefix}layers.{i}."
        if p + "mlp.up_proj.weight" in weights:
            units = order(weights[p + "mlp.up_proj.weight"].shape[0])
            out[p + "mlp.gate_proj.weight"] = weights[p + "mlp.gate_proj.weight"][units]
            out[p + "mlp.up_proj.weight"] = weights[p + "mlp.up_proj.weight"][units]
            out[p + "mlp.down_proj.weight"] = weights[p + "mlp.down_proj.weight"][:, units]
        q = weights[p + "self_attn.q_proj.weight"]
        head_dim = q.shape[0] // heads
        group = heads // kv_heads
        kv_order = order(kv_heads)
        q_order = np.concatenate([g * group + order(group) for g in kv_order])
        q_rows = (q_order[:, None] * head_dim + np.arange(head_dim)).ravel()
        kv_rows = (kv_order[:, None] * head_dim + np.arange(head_dim)).ravel()
        out[p + "self_attn.q_proj.weight"] = q[q_rows]
        out[p + "self_attn.k_proj.weight"] = weights[p + "self_attn.k_proj.weight"][kv_rows]
        out[p + "self_attn.v_proj.weight"] = weights[p + "self_attn.v_proj.weight"][kv_rows]
        out[p + "self_attn.o_proj.weight"] = weights[p + "self_attn.o_proj.weight"][:, q_rows]
    return out


def drop_layers(weights: Weights, keep_every: int = 2, *, block: str = "model.layers.") -> Weights:
    """Keep layers 0, k, 2k, ... and renumber them 0, 1, 2, ... (a layer-dropped derivative)."""
    pattern = re.compile(re.escape(block) + r"(\d+)\.(.*)")
    out: Weights = {}
    for name, w in weights.items():
        m = pattern.fullmatch(name)
        if m is None:
            out[name] = w
        elif int(m.group(1)) % keep_every == 0:
            out[f"{block}{int(m.group(1)) // keep_every}.{m.group(2)}"] = w
    return out


def rotate_residual(weights: Weights, seed: int = 0, *, prefix: str = "model.") -> Weights:
    """Fold every norm gain into the next linear layer and rotate the residual stream by a random
    orthogonal Q: the function is unchanged, every gain becomes exactly 1.0, and element-wise
    correspondence with the original is gone.

    With ``h = Q h'``: embeddings ``E Q``; a layer reading the normed stream ``W diag(g) Q``; a layer
    writing to it ``Q^T W``; the head ``H diag(g_final) Q`` (RMSNorm commutes with rotations).
    """
    d = weights[f"{prefix}embed_tokens.weight"].shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    out = dict(weights)
    out[f"{prefix}embed_tokens.weight"] = weights[f"{prefix}embed_tokens.weight"] @ q
    readers = {
        "input_layernorm.weight": (
            "self_attn.q_proj.weight",
            "self_attn.k_proj.weight",
            "self_attn.v_proj.weight",
        ),
        "post_attention_layernorm.weight": ("mlp.gate_proj.weight", "mlp.up_proj.weight"),
    }
    for name in weights:
        m = re.fullmatch(re.escape(prefix) + r"layers\.(\d+)\.(.*)", name)
        if m is None:
            continue
        p = f"{prefix}layers.{m.group(1)}."
        if m.group(2) in readers:
            gain = weights[name].astype(np.float64)
            for reader in readers[m.group(2)]:
                out[p + reader] = (weights[p + reader] * gain[None, :] @ q).astype(np.float32)
            out[name] = np.ones_like(weights[name])
        elif m.group(2) in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
            out[name] = (q.T @ weights[name]).astype(np.float32)
    final = f"{prefix}norm.weight"
    head = "lm_head.weight" if "lm_head.weight" in weights else f"{prefix}embed_tokens.weight"
    out["lm_head.weight"] = (weights[head] * weights[final].astype(np.float64)[None, :] @ q).astype(
        np.float32
    )
    out[final] = np.ones_like(weights[final])
    return out


def rename_prefix(weights: Weights, old: str, new: str) -> Weights:
    """Move every tensor under ``old`` to ``new`` (e.g. ``visual.`` -> ``model.vision_model.``)."""
    return {(new + n[len(old) :] if n.startswith(old) else n): w for n, w in weights.items()}


def save(
    weights: Weights, folder: str | Path, config: dict | None = None, *, filename: str = "model.safetensors"
) -> Path:
    """Write a Hugging Face-style model folder: one safetensors file and an optional config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / filename, weights, metadata={"format": "pt"})
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder
