"""``compare --fast``: a derived finding from a sample stands; anything else goes to the full pass."""

import subprocess
import sys

import pytest

from scratchcheck import compare
from scratchcheck import synthetic as S

# Matrices of 512 x 1024: above the fingerprint's whole-tensor size, so they are sampled.
SHAPE = {"layers": 2, "hidden": 512, "heads": 8, "kv_heads": 4, "intermediate": 1024, "vocab": 600}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    base = S.llama_decoder(1, **SHAPE)
    return {
        "base": S.save(base, root / "base"),
        "tuned": S.save(S.fine_tune(base, 0.2, seed=2), root / "tuned"),
        "permuted": S.save(S.permute_units(base, seed=3), root / "permuted"),
        "other": S.save(S.llama_decoder(9, **SHAPE), root / "other"),
    }


def verdicts(report):
    return {c.suspect_component: c.verdict for c in report.components}


def test_a_derived_pair_is_decided_from_the_sample_alone(models):
    fast = compare(models["tuned"], [models["base"]], fast=True)
    assert set(verdicts(fast).values()) == {"derived"}
    assert fast.sampled["fast"].startswith("--fast: decided from the sample")
    assert set(fast.sampled["sides"].values()) == {"model, sampled in memory (--fast)"}
    assert fast.sampled["tensors_sampled"] > 0  # the large matrices really were sampled
    assert all(c.p_value < 1e-6 for c in fast.components)
    assert verdicts(fast) == verdicts(compare(models["tuned"], [models["base"]]))


@pytest.mark.parametrize("suspect", ["other", "permuted"])
def test_what_a_sample_cannot_settle_is_run_in_full_and_says_so(models, suspect):
    """An independent pair, and a permuted copy whose kept rows differ: the full pass decides."""
    fast = compare(models[suspect], [models["base"]], fast=True)
    full = compare(models[suspect], [models["base"]])
    assert fast.sampled is None and fast.warnings[0].startswith("--fast: the sample did not decide")
    assert verdicts(fast) == verdicts(full)
    assert [c.p_value for c in fast.components] == [c.p_value for c in full.components]
    if suspect == "permuted":
        assert verdicts(full)["language_model"] == "derived"


def test_a_block_quantised_copy_is_run_in_full_where_the_sample_cannot_see_its_grid(models, tmp_path):
    """int8 in blocks of 32 (GGUF's Q8_0), saved as float: the sample keeps scattered columns, so
    the blocks' grids and with them the conversion are invisible there; the sample's ``derived``,
    every tensor within conversion size, could be ``identical``, and the full pass says it is."""
    from safetensors.numpy import load_file

    weights = load_file(next(models["base"].glob("*.safetensors")))

    rounded = {k: S.round_trip(v, 8, 32) if v.ndim == 2 else v for k, v in weights.items()}
    suspect = S.save(rounded, tmp_path / "q8_0")
    fast = compare(suspect, [models["base"]], fast=True)
    assert "within conversion size, which may be identical" in fast.warnings[0]
    assert verdicts(fast) == verdicts(compare(suspect, [models["base"]]))
    assert verdicts(fast)["language_model"] == "identical"


def test_a_fine_tune_within_conversion_size_on_no_grid_is_decided_from_the_sample(models, tmp_path):
    """Every weight moved by a few +-lr steps: within conversion size, but neither model has a
    matrix on an integer grid (checked on a few rows of the files), so nothing the sample cannot
    see could make it identical."""
    import numpy as np
    from safetensors.numpy import load_file

    weights = load_file(next(models["base"].glob("*.safetensors")))
    rng = np.random.default_rng(5)
    moved = {
        k: (v + 1e-4 * np.sign(rng.standard_normal(v.shape))).astype(np.float32) for k, v in weights.items()
    }
    suspect = S.save(moved, tmp_path / "stepped")
    fast = compare(suspect, [models["base"]], fast=True)
    assert fast.sampled["fast"].startswith("--fast: decided from the sample")
    assert (
        verdicts(fast)
        == verdicts(compare(suspect, [models["base"]]))
        == {c: "derived" for c in verdicts(fast)}
    )


def test_the_cli_flag(models):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scratchcheck",
            "compare",
            str(models["tuned"]),
            str(models["base"]),
            "--fast",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "decided from the sample" in result.stdout
