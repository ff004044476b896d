"""Layer maps of a few diagonal runs (depth up-scaling, spliced layers): found, and paid for."""

import math

import numpy as np
from scipy.stats import kstest

from scratchcheck.align.layermap import describe
from scratchcheck.evidence.layerpaths import best_map, run_map_test

UPSCALED = [(i, i) for i in range(6)] + [(i, i - 4) for i in range(6, 12)]  # SOLAR-style 8 -> 12


def _matrix(rows, cols, mapping, rng, signal=0.5):
    m = 0.03 * rng.standard_normal((rows, cols))
    for i, j in mapping:
        m[i, j] = signal
    return m


def test_an_upscaled_stack_is_found_with_its_map():
    m = _matrix(12, 8, UPSCALED, np.random.default_rng(0))
    ev, path = run_map_test(m)
    assert path == UPSCALED
    assert ev.effect == 0.5 and ev.log_p <= math.log(2 / 1000)
    assert describe(path) == "suspect 0\u20135 \u2190 reference 0\u20135, 6\u201311 \u2190 2\u20137"


def test_a_map_with_a_gap_is_traced_through_the_jump():
    mapping = [(0, 0), (1, 1), (2, 4), (3, 5), (4, 6)]  # reference layers 2-3 dropped
    assert best_map(_matrix(5, 7, mapping, np.random.default_rng(1))) == mapping


def test_p_values_are_uniform_without_layer_correspondence():
    rng = np.random.default_rng(2)
    ps = [math.exp(run_map_test(_matrix(10, 7, [], rng))[0].log_p) for _ in range(80)]
    assert kstest(ps, "uniform").pvalue > 0.01
