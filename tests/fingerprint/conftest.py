"""Miniature models large enough that a fingerprint samples them (with a small ``whole_below``)."""

import pytest

from scratchcheck import synthetic
from scratchcheck.fingerprint import Plan

# Tensors of 16K elements and more are sampled, so 256-wide miniatures exercise the sampler.
PLAN = Plan(whole_below=1 << 14)


def decoder(seed: int):
    return synthetic.llama_decoder(seed, layers=4, hidden=256, heads=8, kv_heads=2, intermediate=512, vocab=1024)


@pytest.fixture(scope="package")
def models(tmp_path_factory):
    """Folders: ``base``, ``tuned`` (a fine-tune of base), ``other`` (independent)."""
    root = tmp_path_factory.mktemp("fp-models")
    base = decoder(1)
    return {
        "base": synthetic.save(base, root / "base"),
        "tuned": synthetic.save(synthetic.fine_tune(base, 0.5, seed=3), root / "tuned"),
        "other": synthetic.save(decoder(2), root / "other"),
    }
