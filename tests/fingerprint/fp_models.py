"""Miniature models large enough that a fingerprint samples them (with a small ``whole_below``)."""

import numpy as np

from scratchcheck import synthetic
from scratchcheck.fingerprint import Plan

# Tensors of 16K elements and more are sampled, axes longer than 64 at most 1/32 of their indices,
# so that 256-wide miniatures exercise the sampler as a 7B model is sampled.
PLAN = Plan(whole_below=1 << 14, short_axis=64)
# The decoders' config: the head counts that split a fused QKV into q, k and v.
CONFIG = synthetic.llama_config(layers=4, hidden=256, heads=8, kv_heads=2, intermediate=512, vocab=1024)


def decoder(seed: int) -> synthetic.Weights:
    return synthetic.llama_decoder(
        seed, layers=4, hidden=256, heads=8, kv_heads=2, intermediate=512, vocab=1024
    )


def fused(weights: synthetic.Weights) -> synthetic.Weights:
    """Phi-3 style: each layer's q, k, v stored as one ``qkv_proj`` and gate, up as one ``gate_up_proj``."""
    out = {}
    for name, weight in weights.items():
        if name.endswith("self_attn.q_proj.weight"):
            p = name.removesuffix("q_proj.weight")
            out[p + "qkv_proj.weight"] = np.concatenate([weights[p + f"{x}_proj.weight"] for x in "qkv"])
        elif name.endswith("mlp.gate_proj.weight"):
            p = name.removesuffix("gate_proj.weight")
            out[p + "gate_up_proj.weight"] = np.concatenate(
                [weights[p + "gate_proj.weight"], weights[p + "up_proj.weight"]]
            )
        elif not any(part in name for part in ("k_proj", "v_proj", "up_proj")):
            out[name] = weight
    return out
