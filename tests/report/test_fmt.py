import pytest

from scratchcheck.report import fmt


@pytest.mark.parametrize(
    ("p", "text"),
    [(None, "n/a"), (float("nan"), "n/a"), (0.0, "< 1e-300"), (3.2e-12, "3.2e-12"), (0.62, "0.62")],
)
def test_p_values(p, text):
    assert fmt.p_value(p) == text


def test_p_in_running_text():
    assert fmt.p_is(0.0) == "p < 1e-300" and fmt.p_is(0.5) == "p = 0.5"


@pytest.mark.parametrize(
    ("n", "text"), [(12, "12"), (1_312_896, "1.31M"), (670_000_000, "670M"), (7e9, "7B")]
)
def test_params(n, text):
    assert fmt.params(n) == text


def test_shares_keep_tiny_parts_visible():
    # Norm gains are ~0.0004% of a large model: that must not print as 0.0%.
    assert fmt.share(0.000004) == "0.0004%" and fmt.share(0.341) == "34.1%" and fmt.share(0) == "0.0%"


def test_correlations_tell_near_one_from_one():
    assert fmt.corr(0.99996) == "1.0000" and fmt.corr(0.9998) == "0.9998" and fmt.corr(None) == "n/a"


def test_model_names():
    assert fmt.model_name("/models/base-lm/") == "base-lm"
    assert (
        fmt.model_name("/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-VL-7B/snapshots/abc")
        == "Qwen/Qwen2.5-VL-7B"
    )


def test_component_titles():
    assert fmt.component_title("vision", "vision") == "vision (vision tower)"
    assert fmt.component_title("projector", "projector") == "projector"
