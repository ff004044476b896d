"""MXFP4 weights (GPT-OSS): ``X_blocks`` + ``X_scales`` read as one dequantised tensor ``X``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from scratchcheck import compare
from scratchcheck.align import align
from scratchcheck.arch import layout
from scratchcheck.errors import FormatError
from scratchcheck.io import open_model

RNG = np.random.default_rng(5)
E, HIDDEN, INTER = 3, 64, 32
CONFIG = '{"model_type": "gpt_oss", "hidden_size": 64, "num_attention_heads": 4}'


def e2m1(code: int) -> float:
    """The OCP e2m1 code from its bits: sign, two exponent bits (bias 1), one mantissa bit."""
    sign, exponent, mantissa = code >> 3, (code >> 1) & 3, code & 1
    magnitude = mantissa * 0.5 if exponent == 0 else 2.0 ** (exponent - 1) * (1 + mantissa / 2)
    return -magnitude if sign else magnitude


def decode(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``[..., out, G, 16]`` bytes and ``[..., out, G]`` exponents -> ``[..., out, G * 32]``, low nibble first."""
    table = np.array([e2m1(c) for c in range(16)])
    pairs = np.stack([table[blocks & 15], table[blocks >> 4]], axis=-1).reshape(*blocks.shape[:-1], 32)
    return (pairs * 2.0 ** (scales.astype(np.float64) - 127)[..., None]).reshape(*blocks.shape[:-2], -1)


def mxfp4_model(folder: Path) -> dict[str, np.ndarray]:
    """A GPT-OSS-style MoE layer with MXFP4 experts; returns the blocks and scales written."""
    p = "model.layers.0.mlp.experts."
    stored = {
        p + "gate_up_proj_blocks": RNG.integers(0, 256, (E, 2 * INTER, HIDDEN // 32, 16), dtype=np.uint8),
        p + "gate_up_proj_scales": RNG.integers(120, 130, (E, 2 * INTER, HIDDEN // 32), dtype=np.uint8),
        p + "down_proj_blocks": RNG.integers(0, 256, (E, HIDDEN, INTER // 32, 16), dtype=np.uint8),
        p + "down_proj_scales": RNG.integers(120, 130, (E, HIDDEN, INTER // 32), dtype=np.uint8),
    }
    tensors = {
        "model.layers.0.input_layernorm.weight": np.ones(HIDDEN, np.float32) * 1.5,
        p + "gate_up_proj_bias": RNG.standard_normal((E, 2 * INTER)).astype(np.float32),
        **stored,
    }
    folder.mkdir()
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(CONFIG)
    return stored


def test_blocks_and_scales_read_as_one_dequantised_tensor(tmp_path: Path) -> None:
    stored = mxfp4_model(tmp_path / "mx")
    p = "model.layers.0.mlp.experts."
    gate_up = decode(stored[p + "gate_up_proj_blocks"], stored[p + "gate_up_proj_scales"])
    with open_model(tmp_path / "mx") as model:
        infos = {i.name: i for i in model.tensors()}
        names = [i.name for i in model.tensors()]
        assert {i.name for i in model.weights()} == {
            "model.layers.0.input_layernorm.weight",
            p + "gate_up_proj_bias",
            p + "gate_up_proj",
            p + "down_proj",
        }
        for name in (p + "gate_up_proj", p + "down_proj"):  # listed where its blocks are stored
            assert names[names.index(name) + 1] == name + "_blocks"
        assert (infos[p + "gate_up_proj"].dtype, infos[p + "gate_up_proj"].shape) == (
            "MXFP4",
            (E, HIDDEN, 2 * INTER),
        )
        assert infos[p + "down_proj"].shape == (E, INTER, HIDDEN)
        assert infos[p + "gate_up_proj_blocks"].aux and infos[p + "down_proj_scales"].aux
        assert model.num_params == HIDDEN + E * 2 * INTER + E * HIDDEN * 2 * INTER + E * INTER * HIDDEN
        assert model.dtype_breakdown()["MXFP4"] == E * HIDDEN * 2 * INTER + E * INTER * HIDDEN
        # [E, in, out], as transformers loads GPT-OSS; one expert reads alone, equal to the whole.
        whole = model.read_float(p + "gate_up_proj")
        np.testing.assert_array_equal(whole, np.swapaxes(gate_up, 1, 2).astype(np.float32))
        np.testing.assert_array_equal(model.read_float(p + "gate_up_proj", 2), whole[2])
        down = decode(stored[p + "down_proj_blocks"], stored[p + "down_proj_scales"])
        np.testing.assert_array_equal(model.read_values(p + "down_proj", 1), down[1].T.astype(np.float32))


def test_mxfp4_experts_pair_with_a_dequantised_copy(tmp_path: Path) -> None:
    """The MXFP4 release and a bf16/f32 release of the same GPT-OSS weights are the same model."""
    mxfp4_model(tmp_path / "mx")
    with open_model(tmp_path / "mx") as model:
        plain = {i.name: np.ascontiguousarray(model.read_float(i.name)) for i in model.weights()}
    (tmp_path / "f32").mkdir()
    save_file(plain, str(tmp_path / "f32" / "model.safetensors"))
    (tmp_path / "f32" / "config.json").write_text(CONFIG)
    with open_model(tmp_path / "mx") as a, open_model(tmp_path / "f32") as b:
        result = align(layout(a), layout(b))
        assert not result.unpaired_suspect and not result.unpaired_reference
        experts = [p for p in result.pairs if p.role.startswith("expert.")]
        assert {p.role for p in experts} == {
            "expert.gate.weight",
            "expert.up.weight",
            "expert.down.weight",
            "expert.gate.bias",
            "expert.up.bias",
        }
        assert len(experts) == 5 * E
        for pair in experts:
            np.testing.assert_array_equal(pair.suspect.load(), pair.reference.load())
    report = compare(tmp_path / "mx", [tmp_path / "f32"])
    assert {c.verdict for c in report.components} == {"identical"}


def test_scales_that_do_not_fit_the_blocks_are_a_format_error(tmp_path: Path) -> None:
    save_file(
        {"w_blocks": np.zeros((4, 2, 16), np.uint8), "w_scales": np.zeros((4, 3), np.uint8)},
        str(tmp_path / "m.safetensors"),
    )
    with pytest.raises(
        FormatError, match=r"MXFP4 scales 'w_scales' \[4, 3\] do not match blocks 'w_blocks' \[4, 2, 16\]"
    ) as caught:
        open_model(tmp_path / "m.safetensors")
    assert "m.safetensors" in str(caught.value) and "\n" not in str(caught.value)
