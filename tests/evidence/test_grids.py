"""grids: the traces of a change of precision, and their absence in fine-tuned floats."""

import ml_dtypes
import numpy as np
import pytest

from scratchcheck import synthetic
from scratchcheck.evidence import grids

RNG = np.random.default_rng(0)
W = (RNG.standard_normal((16, 512)) * 0.02).astype(np.float32)


@pytest.mark.parametrize(
    "block, bits, asymmetric",
    [(512, 8, False), (32, 8, False), (32, 4, False), (32, 4, True), (16, 6, False), (128, 4, True)],
)
def test_dequantised_values_are_found_on_their_grid_with_its_step(block, bits, asymmetric):
    q = synthetic.round_trip(W, bits, block, asymmetric=asymmetric)
    steps = grids.integer_steps(q)
    assert steps is not None
    # The step found is the quantiser's (or, in a block too narrow to show it, a whole multiple).
    x = q.reshape(-1, block).astype(np.float64)
    true = (x.max(1) - x.min(1)) / (2**bits - 1) if asymmetric else np.abs(x).max(1) / (2 ** (bits - 1) - 1)
    per16 = np.repeat(true, block // grids.BLOCK)
    ratio = steps / per16
    assert np.allclose(ratio, np.round(ratio), atol=1e-3) and np.all(np.round(ratio) >= 1)
    assert grids.rounds_onto(W, q, steps)


@pytest.mark.parametrize(
    "values",
    [
        W,  # a trained model's floats
        W.astype(ml_dtypes.bfloat16).astype(np.float32),  # ... stored in bf16
        W.astype(np.float16).astype(np.float32),
        (W + 2e-4 * np.sign(RNG.standard_normal(W.shape))).astype(np.float32),  # a few Adam steps
    ],
)
def test_floats_are_on_no_integer_grid(values):
    assert grids.integer_steps(values) is None


def test_a_grid_is_not_claimed_on_too_few_distinct_values():
    ternary = np.sign(W).astype(np.float32)  # three values: no step can be told apart from chance
    assert grids.integer_steps(ternary) is None


def test_a_quantised_model_moved_by_more_than_half_a_step_is_not_its_rounding():
    q = synthetic.round_trip(W, 8, 32)
    steps = grids.integer_steps(q)
    drifted = W + 0.6 * np.repeat(steps, grids.BLOCK).reshape(W.shape) * np.sign(RNG.standard_normal(W.shape))
    assert not grids.rounds_onto(drifted.astype(np.float32), q, steps)


def test_float_grids_and_rounding_onto_them():
    sample = W.ravel().astype(np.float64)
    bf16 = W.ravel().astype(ml_dtypes.bfloat16).astype(np.float64)
    assert grids.float_grids(sample) == frozenset()
    assert "bf16" in grids.float_grids(bf16)
    assert grids.rounds_to(sample, bf16, "bf16")
    # A fine-tune of the bf16 model, saved in bf16: on the grid too, but not the rounding of the other.
    tuned = (bf16 + 3e-4 * RNG.standard_normal(bf16.size)).astype(ml_dtypes.bfloat16).astype(np.float64)
    assert "bf16" in grids.float_grids(tuned)
    assert not grids.rounds_to(sample, tuned, "bf16")


@pytest.mark.parametrize("axis", [0, 1])
def test_a_pair_carries_the_integer_trace_whichever_axis_holds_the_scales(axis):
    """Per-row scales (PyTorch's per-channel int8) and per-column ones (ONNX MatMul weights), on
    the matrix and on its transposed view, as the pairing hands transposed weights over."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((256, 384)) * 0.02).astype(np.float32)
    per_row = synthetic.round_trip(w, 8) if axis == 1 else synthetic.round_trip(w.T, 8).T
    q = np.ascontiguousarray(per_row)
    assert pair_metrics(q, w).conversion_trace == "integer grid"
    assert pair_metrics(q.T, w.T).conversion_trace == "integer grid"
    tuned = (w + 1e-4 * np.sign(RNG.standard_normal(w.shape))).astype(np.float32)
    assert pair_metrics(tuned, w).conversion_trace is None


def test_errors_relative_to_the_value_are_rounding_and_one_sized_steps_are_not():
    """Relative errors of a few float32 steps everywhere (a tensor recomputed in other arithmetic)
    are rounding; +-lr everywhere keeps only float32's jitter, which grows with the value too."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((256, 384)) * 0.02).astype(np.float32)
    recomputed = (w * (1 + 2.0**-21 * RNG.uniform(-1, 1, w.shape))).astype(np.float32)
    assert pair_metrics(recomputed, w).conversion_trace == "float rounding"
    stepped = (w + 1e-4 * np.sign(RNG.standard_normal(w.shape))).astype(np.float32)
    assert pair_metrics(stepped, w).delta_scale_corr > 0.3  # the jitter
    assert pair_metrics(stepped, w).conversion_trace is None


def test_a_light_fine_tune_of_a_rounded_model_is_not_its_rounding():
    """Rounding onto a grid undoes a change smaller than half a step: a fine-tune of a dequantised
    or bf16 model, saved in float32, rounds back onto it. Rounding's own errors spread over the half
    step; the fine-tune's sit far inside it."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((256, 384)) * 0.02).astype(np.float32)
    steps = (RNG.choice([-1.0, 1.0], w.shape) * 2e-6).astype(np.float32)
    q = synthetic.round_trip(w, 4, 32)
    assert pair_metrics(q, w).conversion_trace == "integer grid"
    assert pair_metrics((q + steps).astype(np.float32), q).conversion_trace is None
    bf16 = w.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert pair_metrics(w, bf16).conversion_trace == "float grid"
    assert pair_metrics((bf16 + steps).astype(np.float32), bf16).conversion_trace is None


def test_values_already_on_the_grid_do_not_count_against_a_conversion():
    """Three quarters of a table already exact in fp16 (as MiniLM's position table is): its fp16
    copy moves only the rest, by rounding, and is a conversion."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((256, 384)) * 0.02).astype(np.float32)
    exact = RNG.random(w.shape) < 0.75
    w[exact] = w[exact].astype(np.float16).astype(np.float32)
    assert pair_metrics(w.astype(np.float16), w).conversion_trace == "float grid"


def test_a_convolution_quantised_per_output_channel_carries_the_integer_trace():
    """A conv weight [out, in, kh, kw]: its last axis (the kernel) is too short for a block, and the
    scales of per-channel quantisation are per output channel: rows are whole output channels."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((32, 16, 3, 3)) * 0.05).astype(np.float32)
    q = synthetic.round_trip(w, 8)  # one scale per output channel
    assert pair_metrics(q, w).conversion_trace == "integer grid"


def test_one_side_in_memory_order_and_the_other_transposed_are_compared_at_the_same_positions():
    """An ONNX weight arrives as a transposed view while its HF counterpart is in memory order: the
    two sides' runs differ in length and must be cut to the same positions, not broadcast."""
    from scratchcheck.evidence.metrics import pair_metrics

    w = (RNG.standard_normal((256, 384)) * 0.02).astype(np.float32)
    q = np.ascontiguousarray(synthetic.round_trip(w.T, 8).T)  # per-column scales, in memory order
    w_view = np.ascontiguousarray(w.T).T  # the same values, transposed in memory
    assert pair_metrics(q, w_view).conversion_trace == "integer grid"
    assert pair_metrics(w_view, q).conversion_trace == "integer grid"
