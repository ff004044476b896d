"""Every tensor shape reads and compares: 0-d, one element, empty, high rank, in every float dtype."""

import math

import ml_dtypes
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchcheck import compare, open_model, synthetic
from scratchcheck.results import VERDICTS

DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16]
shapes = st.lists(st.integers(0, 5), min_size=0, max_size=6).map(tuple)


def _model(seed: int, shape: tuple, dtype) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "odd.weight": rng.standard_normal(shape).astype(dtype),
        "body.weight": rng.standard_normal((16, 8)).astype(np.float32),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=st.sampled_from(DTYPES), same=st.booleans())
def test_any_shape_and_dtype_compares(tmp_path_factory, shape, dtype, same):
    root = tmp_path_factory.mktemp("shape")
    a = synthetic.save(_model(1, shape, dtype), root / "a")
    b = synthetic.save(_model(1 if same else 2, shape, dtype), root / "b")
    with open_model(a) as checkpoint:
        assert checkpoint.info("odd.weight").shape == shape
        assert checkpoint.read_values("odd.weight", None).shape == shape
    report = compare(a, [b])
    assert report.verdict in VERDICTS
    assert math.isclose(sum(report.share_by_verdict.values()), 1.0, abs_tol=1e-6)
    odd = [t for t in report.tensors if t.suspect == "odd.weight"]
    if same:
        assert report.verdict != "independent"
    if odd and odd[0].learned and int(np.prod(shape)) >= 4:
        assert odd[0].pearson is not None
