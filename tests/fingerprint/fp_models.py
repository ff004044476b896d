"""Miniature models large enough that a fingerprint samples them (with a small ``whole_below``)."""

from scratchcheck import synthetic
from scratchcheck.fingerprint import Plan

# Tensors of 16K elements and more are sampled, axes longer than 64 at most 1/32 of their indices,
# so that 256-wide miniatures exercise the sampler as a 7B model is sampled.
PLAN = Plan(whole_below=1 << 14, short_axis=64)


def decoder(seed: int) -> synthetic.Weights:
    return synthetic.llama_decoder(
        seed, layers=4, hidden=256, heads=8, kv_heads=2, intermediate=512, vocab=1024
    )
