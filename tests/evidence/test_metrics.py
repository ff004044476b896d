import math

import ml_dtypes
import numpy as np
import pytest

from scratchcheck.evidence import stream
from scratchcheck.evidence.metrics import pair_metrics, pearson


def test_pearson_is_exact_for_tensors_with_a_large_common_offset():
    # Norm gains near 1 with a tiny spread: the textbook one-pass formula loses every digit here.
    rng = np.random.default_rng(0)
    a = (1000.0 + rng.standard_normal(100_000) * 1e-3).astype(np.float32)
    b = (a + rng.standard_normal(a.size).astype(np.float32) * 1e-3).astype(np.float32)
    expected = np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1]
    assert pair_metrics(a, b).pearson == pytest.approx(expected, abs=1e-9)


# The float32 pass's stated bound (docs/methods.md): each moment within (ROW + 2) * 2^-24 of the
# product of the norms, so Pearson within three times that of the float64 value.
EPS = (stream.ROW + 2) * 2.0**-24


def _float64_reference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    xa, xb = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    d = xa - xb
    return {
        "pearson": float(np.corrcoef(xa, xb)[0, 1]),
        "cosine": float(xa @ xb / np.sqrt((xa @ xa) * (xb @ xb))),
        "rel_l2": float(np.sqrt(d @ d) / np.sqrt(xb @ xb)),
        "max_abs_diff": float(np.abs(d).max()),
        "frac_equal": float(np.mean(d == 0)),
        "mean_a": float(xa.mean()),
        "std_b": float(xb.std()),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("offset", [0.0, 3.0, 1000.0])
def test_float32_pass_agrees_with_float64_within_the_stated_bound(monkeypatch, dtype, offset):
    rng = np.random.default_rng(1)
    a = (offset + rng.standard_normal((300, 70))).astype(dtype)
    b = (0.5 * a.astype(np.float64) + rng.standard_normal(a.shape)).astype(dtype)
    b[:10] = a[:10]  # some stretches bit-identical: the one-sided route
    expected = _float64_reference(a, b)
    # Many uneven chunks, several spans: threads and merges as on a large tensor.
    monkeypatch.setattr(stream, "CHUNK", 997)
    monkeypatch.setattr(stream, "SPAN", 3000)
    m = pair_metrics(a, b)
    assert m.pearson == pytest.approx(expected["pearson"], abs=3 * EPS)
    assert m.cosine == pytest.approx(expected["cosine"], abs=3 * EPS)
    assert m.rel_l2 == pytest.approx(expected["rel_l2"], rel=EPS)
    assert m.max_abs_diff == pytest.approx(expected["max_abs_diff"], rel=2.0**-24)
    assert m.frac_equal == expected["frac_equal"]
    assert m.mean_a == pytest.approx(expected["mean_a"], rel=EPS)
    assert m.std_b == pytest.approx(expected["std_b"], rel=EPS)


def test_chunking_changes_nothing_beyond_rounding(monkeypatch):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 70)).astype(np.float32) + 3
    b = (0.5 * a + rng.standard_normal(a.shape)).astype(np.float32)
    whole = pair_metrics(a, b)
    monkeypatch.setattr(stream, "CHUNK", 997)
    monkeypatch.setattr(stream, "SPAN", 2991)
    chunked = pair_metrics(a, b)
    for field in ("pearson", "cosine", "rel_l2", "max_abs_diff", "frac_equal", "cosine_null", "delta_corr"):
        assert getattr(chunked, field) == pytest.approx(getattr(whole, field), rel=EPS, abs=EPS), field
    assert np.array_equal(chunked.sample_a, whole.sample_a)


def test_float64_tensors_are_measured_in_float64():
    rng = np.random.default_rng(6)
    a = 1e6 + rng.standard_normal(50_000) * 1e-6  # below float32's resolution at this offset
    b = a + rng.standard_normal(a.size) * 1e-6
    assert pair_metrics(a, b).pearson == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-6)


def test_bit_identity_is_decided_on_bytes():
    a = np.array([0.0, 1.0, np.nan], np.float32)
    b = np.array([-0.0, 1.0, np.nan], np.float32)  # equal values, different bytes
    m = pair_metrics(a, b)
    assert not m.bit_identical and m.frac_equal == pytest.approx(2 / 3)  # NaN is never equal
    same = pair_metrics(a, a.copy())
    assert same.bit_identical and same.frac_equal == pytest.approx(2 / 3)


def test_raw_cosine_of_positive_gains_is_high_for_unrelated_tensors_and_its_null_says_so():
    rng = np.random.default_rng(2)
    a = (1.0 + 0.05 * rng.standard_normal(4096)).astype(np.float32)
    b = (0.8 + 0.05 * rng.standard_normal(4096)).astype(np.float32)
    m = pair_metrics(a, b)
    assert m.cosine > 0.99  # the "96.8% similar" trap
    assert abs(m.pearson) < 0.1
    assert m.cosine_null == pytest.approx(m.cosine, abs=0.01)  # no correspondence explains all of it


def test_identity_bit_identity_and_difference_numbers():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    same = pair_metrics(a, a.copy())
    assert same.bit_identical and same.frac_equal == 1.0 and same.rel_l2 == 0.0 and same.max_abs_diff == 0.0
    b = a.copy()
    b[0, 0] = 1.5
    m = pair_metrics(a, b)
    assert not m.bit_identical
    assert m.frac_equal == pytest.approx(11 / 12)
    assert m.max_abs_diff == pytest.approx(1.5)
    assert m.rel_l2 == pytest.approx(1.5 / np.linalg.norm(b.astype(np.float64)))


def test_equal_values_in_different_dtypes_are_not_bit_identical():
    a = np.linspace(-1, 1, 64, dtype=np.float32)
    b = a.astype(ml_dtypes.bfloat16).astype(np.float32)
    m = pair_metrics(a.astype(ml_dtypes.bfloat16), b)
    assert m.frac_equal == 1.0 and not m.bit_identical


def test_strided_views_are_measured_like_their_copies():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((50, 40)).astype(np.float32)
    b = rng.standard_normal((50, 40)).astype(np.float32)
    assert pair_metrics(a.T, b.T).pearson == pytest.approx(
        pair_metrics(a.T.copy(), b.T.copy()).pearson, abs=1e-12
    )


def test_constant_tensor_gives_undefined_correlation_not_a_number_made_up():
    m = pair_metrics(np.ones(10, np.float32), np.arange(10, dtype=np.float32))
    assert math.isnan(m.pearson)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        pair_metrics(np.zeros(3), np.zeros(4))


def test_noised_copy_has_gaussian_uncorrelated_difference():
    rng = np.random.default_rng(4)
    b = rng.standard_normal(200_000).astype(np.float32)
    a = b + (rng.standard_normal(b.size) / 700).astype(np.float32)
    m = pair_metrics(a, b)
    assert m.delta_kurtosis == pytest.approx(3.0, abs=0.2)
    assert abs(m.delta_corr) < 0.02
    assert m.rel_l2 == pytest.approx(1 / 700, rel=0.05)
    assert m.spearman > 0.999


def test_pearson_helper_matches_numpy():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(1000), rng.standard_normal(1000)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_a_contiguous_and_a_transposed_view_are_walked_alike():
    """An ONNX MatMul weight [in, out] read transposed meets a contiguous [out, in] one: the two
    streams must be cut into the same chunks (a large matrix spans several)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1536, 384)).astype(np.float32)
    b_stored = (a + 0.01 * rng.standard_normal(a.shape)).astype(np.float32).T.copy()
    m = pair_metrics(a, b_stored.T)
    assert m.pearson == pytest.approx(pearson(a, b_stored.T), abs=1e-6) and m.pearson > 0.99


def test_the_null_inflation_is_estimated_unless_the_widest_possible_null_is_already_decided():
    from scratchcheck.evidence.metrics import null_inflation, widest_inflation

    rng = np.random.default_rng(5)
    rows, cols = 500, 450  # r ~ 1 then gives z >= sqrt(450) > 20 even under the widest null
    shared = rng.standard_normal((rows, 1)) * 3.0  # a row structure any two such models share
    a = shared + rng.standard_normal((rows, cols))
    b = shared + rng.standard_normal((rows, cols))
    m = pair_metrics(a, b)
    widest = widest_inflation(a.shape)
    assert 3.0 < m.null_inflation < widest  # estimated, and wide: the shared rows are not evidence
    norms = float(((a - a.mean()) ** 2).sum() * ((b - b.mean()) ** 2).sum()) / (a.size - 1)
    assert null_inflation(a, b, a.mean(), b.mean(), norms) <= widest
    copy = a + 0.01 * rng.standard_normal(a.shape)
    decided = pair_metrics(copy, a)
    assert decided.null_inflation == widest  # r ~ 1: no estimate needed, the widest null is used
    assert decided.pearson > 0.999
