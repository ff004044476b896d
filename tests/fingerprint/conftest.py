"""Fixtures of the fingerprint tests; the miniature models live in ``fp_models`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fp_models import decoder  # noqa: E402

from scratchcheck import synthetic  # noqa: E402


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
