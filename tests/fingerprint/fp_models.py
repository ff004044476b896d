"""Miniature models large enough that a fingerprint samples them (with a small ``whole_below``)."""

from scratchcheck import synthetic
from scratchcheck.fingerprint import Plan

# Tensors of 16K elements and more are sampled, and from 64K on the read budget binds, so that
# 256-wide miniatures exercise the sampler as a 7B model does.
PLAN = Plan(whole_below=1 << 14, large_from=1 << 16)


def decoder(seed: int) -> synthetic.Weights:
    return synthetic.llama_decoder(
        seed, layers=4, hidden=256, heads=8, kv_heads=2, intermediate=512, vocab=1024
    )
