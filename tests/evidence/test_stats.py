"""stats: every null is calibrated (p-values of unrelated inputs are uniform), tiny p are kept."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from scratchcheck.evidence import stats
from scratchcheck.evidence.metrics import pair_metrics


def _p(ev: stats.Evidence) -> float:
    return math.exp(ev.log_p)


def test_vector_test_is_exact_for_unrelated_vectors():
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(500):
        a = 1.0 + 0.05 * rng.standard_t(3, 64)  # heavy-tailed norm gains with a positive mean
        b = 0.4 + 0.05 * rng.standard_normal(64)
        m = pair_metrics(a, b)
        ps.append(_p(stats.coordinate_test(m.pearson, m.n, vector=True)))
    assert sps.kstest(ps, "uniform").pvalue > 0.01


def test_matrix_test_is_calibrated_when_both_axes_are_arbitrary():
    rng = np.random.default_rng(1)
    ps = []
    for _ in range(300):
        a, b = rng.standard_normal((2, 48, 40))
        m = pair_metrics(a, b)
        assert m.null_inflation < 1.5
        ps.append(_p(stats.coordinate_test(m.pearson, m.n, m.null_inflation)))
    assert sps.kstest(ps, "uniform").pvalue > 0.01


def test_shared_row_structure_widens_the_null_and_keeps_it_calibrated():
    # Embeddings of one tokenizer: token rows share structure in any two models (frequency, a common
    # mean direction), while the columns (the residual basis) are arbitrary per training run.
    rng = np.random.default_rng(2)
    token = rng.standard_normal((512, 3)) * np.array([3.0, 2.0, 1.0])
    inflated, plain = [], []
    for _ in range(200):
        a = token @ rng.standard_normal((3, 32)) + rng.standard_normal((512, 32))
        b = token @ rng.standard_normal((3, 32)) + rng.standard_normal((512, 32))
        m = pair_metrics(a, b)
        inflated.append(_p(stats.coordinate_test(m.pearson, m.n, m.null_inflation)))
        plain.append(_p(stats.coordinate_test(m.pearson, m.n)))
    assert sps.kstest(inflated, "uniform").pvalue > 0.01
    assert np.mean(np.array(plain) < 1e-3) > 0.2  # the shuffle null alone would cry wolf


def test_derived_pairs_reach_far_below_the_float_floor_and_keep_their_size():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((256, 256))
    m = pair_metrics(a + 0.5 * rng.standard_normal(a.shape), a)
    ev = stats.coordinate_test(m.pearson, m.n, m.null_inflation)
    assert stats.log10_p(ev.log_p) < -1000 and math.isfinite(ev.log_p)
    assert stats.p_of(ev.log_p) == stats.P_FLOOR
    # A bitwise copy of a vector is not an infinite statistic, and the t tail continues smoothly.
    assert math.isfinite(stats.coordinate_test(1.0, 64, vector=True).log_p)
    r = 1 - 1e-9
    t_stat = r * math.sqrt(62 / (1 - r * r))
    assert stats.coordinate_test(r, 64, vector=True).log_p == pytest.approx(
        math.log(2) + float(sps.t.logsf(t_stat, 62)), rel=1e-3
    )


def test_cauchy_combination_is_uniform_for_independent_and_for_identical_p():
    rng = np.random.default_rng(4)
    independent = [math.exp(stats.cauchy_combine(np.log(rng.random(10)))) for _ in range(1000)]
    assert sps.kstest(independent, "uniform").pvalue > 0.01
    for p in (0.9, 0.3, 1e-5):
        assert math.exp(stats.cauchy_combine([math.log(p)] * 7)) == pytest.approx(p, rel=1e-6)


def test_cauchy_combination_of_tiny_p_is_their_harmonic_mean_in_log_space():
    logs = [-2000.0, -3000.0, math.log(0.5)]
    # Harmonic mean of the p: the smallest dominates, paid for by the number of tests.
    assert stats.cauchy_combine(logs) == pytest.approx(-3000.0 + math.log(3.0), abs=1e-6)
    assert stats.cauchy_combine([float("nan"), math.log(0.2)]) == pytest.approx(math.log(0.2))


def test_fisher_matches_scipy_and_works_in_log_space():
    ps = [0.01, 0.2, 0.5, 0.03]
    expected = sps.combine_pvalues(ps, method="fisher").pvalue
    assert math.exp(stats.fisher_combine(np.log(ps))) == pytest.approx(expected, rel=1e-9)
    assert stats.log10_p(stats.fisher_combine([-5000.0, -5000.0])) < -4000


def test_holm_step_down():
    ps = [0.01, 0.04, 0.03, 0.005]
    adjusted = [math.exp(x) for x in stats.holm(np.log(ps))]
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 with the running maximum.
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(stats.holm([float("nan"), 0.0])[0])


def test_identity_test_exact_for_the_identity_and_calibrated_for_random_matchings():
    ev = stats.identity_test(np.arange(12))
    assert ev.log_p == pytest.approx(-math.lgamma(13))
    assert _p(stats.identity_test(np.arange(5))) <= 1 / 120  # exact enumeration for few units
    few = [
        _p(stats.identity_test(rng_perm))
        for rng_perm in np.random.default_rng(9).permuted(np.tile(np.arange(5), (400, 1)), axis=1)
    ]
    assert sps.kstest(few, "uniform").pvalue > 0.01
    rng = np.random.default_rng(5)
    ps = [_p(stats.identity_test(rng.permutation(200))) for _ in range(500)]
    assert sps.kstest(ps, "uniform").pvalue > 0.01


def test_prediction_test_is_calibrated_for_exchangeable_draws():
    rng = np.random.default_rng(6)
    ps = [_p(stats.prediction_test(rng.normal(), rng.normal(size=16))) for _ in range(2000)]
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    assert stats.log10_p(stats.prediction_test(1.0, rng.normal(0.2, 0.01, 16)).log_p) < -12


def test_layer_diagonal_null_and_the_maps_it_finds():
    rng = np.random.default_rng(7)
    ps = [_p(stats.layer_diagonal_test(rng.random((5, 5)), seed=i)[0]) for i in range(300)]
    assert sps.kstest(ps, "uniform").pvalue > 0.01  # ties broken at random: exactly uniform
    diag = np.eye(6) + 0.05 * rng.random((6, 6))
    ev, best = stats.layer_diagonal_test(diag)
    assert best == (1, 0) and _p(ev) <= 1 / math.factorial(6)  # the best of 720 orderings
    dropped = 0.1 * rng.random((4, 8))
    dropped[np.arange(4), 2 * np.arange(4)] += 1.0  # layer k of the child is layer 2k of the parent
    ev, best = stats.layer_diagonal_test(dropped)
    assert best == (2, 0) and _p(ev) < 0.01
    deeper = stats.layer_diagonal_test(dropped.T)  # the suspect is the deeper one: same answer
    assert deeper[1] == (2, 0)


def test_detectable_r_is_the_median_detectable_effect():
    alpha = 1e-6
    r_star = stats.detectable_r([10_000], [1.0], alpha)
    assert r_star == pytest.approx(sps.norm.isf(alpha) / math.sqrt(9_999), rel=1e-3)
    rng = np.random.default_rng(8)
    hits = []
    for _ in range(200):
        b = rng.standard_normal(10_000)
        a = r_star * b + math.sqrt(1 - r_star**2) * rng.standard_normal(10_000)
        m = pair_metrics(a.reshape(100, 100), b.reshape(100, 100))
        ev = stats.coordinate_test(m.pearson, m.n, m.null_inflation)
        hits.append(stats.stouffer([ev.z], [1.0]) < math.log(alpha))
    assert 0.35 < np.mean(hits) < 0.65  # "would have been detected" half the time, as stated
    # More tensors detect smaller effects; wider nulls need larger ones.
    assert stats.detectable_r([10_000] * 20, [1.0] * 20, alpha) < r_star
    assert stats.detectable_r([10_000], [4.0], alpha) == pytest.approx(2 * r_star, rel=1e-3)


def test_stouffer_with_the_null_correlation_of_shared_basis_vectors_stays_calibrated():
    # Norm gains of different layers share their outlier dimensions in each model; the statistics
    # of independent pairs are then correlated, and an independence-assuming sum overstates.
    rng = np.random.default_rng(9)
    naive, corrected = [], []
    for _ in range(400):
        shared_a, shared_b = rng.standard_normal(64), rng.standard_normal(64)
        xs = [shared_a + 0.5 * rng.standard_normal(64) for _ in range(8)]
        ys = [shared_b + 0.5 * rng.standard_normal(64) for _ in range(8)]
        evs = [
            stats.coordinate_test(pair_metrics(x, y).pearson, 64, vector=True)
            for x, y in zip(xs, ys, strict=True)
        ]
        unit = [(v - v.mean()) / np.linalg.norm(v - v.mean()) for v in xs]
        unit_b = [(v - v.mean()) / np.linalg.norm(v - v.mean()) for v in ys]
        corr = (np.stack(unit) @ np.stack(unit).T) * (np.stack(unit_b) @ np.stack(unit_b).T)
        zs = [e.z for e in evs]
        naive.append(math.exp(stats.stouffer(zs, [1.0] * 8)))
        corrected.append(math.exp(stats.stouffer(zs, [1.0] * 8, corr)))
    assert sps.kstest(corrected, "uniform").pvalue > 0.01
    assert np.mean(np.array(naive) < 0.01) > 0.05  # five times too many at the 1% level


def test_normal_quantile_from_log_tail_beyond_float_range():
    for z in (1.0, 5.0, 30.0, 100.0, 1000.0):
        assert stats.z_of_log_sf(float(sps.norm.logsf(z))) == pytest.approx(z, rel=1e-6)


def test_normal_quantile_matches_scipy_on_both_sides_of_the_median():
    from scipy.special import ndtri

    for log_sf in (-1e-12, -1e-5, -0.1, -0.69, -0.7, -1.0, -3.0, -10.0, -100.0, -699.0):
        expected = float(-ndtri(math.exp(log_sf)))
        assert stats.z_of_log_sf(log_sf) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_fisher_combination_matches_the_chi2_tail():
    from scipy.special import chdtrc

    for k in (1, 2, 7, 60):
        for total in (0.05, 1.0, 30.0, 400.0):
            log_ps = [-total / k] * k
            expected = math.log(float(chdtrc(2 * k, 2 * total)))
            assert stats.fisher_combine(log_ps) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert stats.fisher_combine([0.0, 0.0]) == 0.0
    assert -math.inf < stats.fisher_combine([-5000.0, -4000.0]) < -8000.0  # past the float floor


def test_percentile_is_a_screening_number():
    assert stats.percentile(0.91, [0.5, 0.8, 0.9, 0.95]) == 75.0
    assert math.isnan(stats.percentile(0.5, []))


def test_the_tail_functions_match_scipy_stats_from_the_centre_to_far_past_float_range():
    """norm_log_sf and the t tail are computed without scipy.stats (a second of import)."""
    for z in [*np.linspace(-30, 36.9, 400), 37.0, 37.1, 60.0, 1e3, 1e5]:
        expected = float(sps.norm.logsf(z))
        assert stats.norm_log_sf(float(z)) == pytest.approx(expected, rel=1e-12, abs=1e-300)
    for df in (2, 3, 40, 1999, 4000, 10**5, 10**7):
        for stat in (-4.0, -0.3, 0.0, 1e-6, 0.5, 2.5, 5.0, 30.0, 1e3):
            expected = float(sps.t.logsf(stat, df))
            if math.isfinite(expected):  # scipy's underflows past about -745; ours does not
                assert stats._t_log_sf(stat, df) == pytest.approx(expected, rel=1e-9)
    # Past the float floor the t tail keeps falling instead of stopping at -inf.
    assert -math.inf < stats._t_log_sf(1e12, 50) < stats._t_log_sf(1e10, 50) < -700


def test_the_layer_null_computed_at_once_equals_the_map_search_per_permutation():
    rng = np.random.default_rng(11)
    m = rng.random((6, 9))
    m[2, :] = np.nan  # a suspect layer with nothing compared
    m[0, 3] = np.nan
    maps = stats._layer_maps(*m.shape)
    perms = np.array([rng.permutation(9) for _ in range(700)])  # more than one block of 512
    expected = [stats._best_map(m[:, p], maps)[0] for p in perms]
    np.testing.assert_allclose(stats._best_means(m, perms, maps), expected, rtol=1e-12)


def test_permutations_in_one_call_are_the_ones_drawn_one_at_a_time():
    """The layer tests' nulls (and so their p-values) stay exactly as they were drawn before."""
    for n in (2, 7, 30):
        one_by_one = np.random.default_rng(5)
        expected = np.array([one_by_one.permutation(n) for _ in range(999)])
        at_once = np.random.default_rng(5)
        assert np.array_equal(stats.permutations(at_once, n, 999), expected)
        assert at_once.random() == one_by_one.random()  # the stream continues where it did
