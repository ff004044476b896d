"""Non-learned tensors are recognised by name and by value, and learned ones never are."""

import numpy as np
import pytest

from scratchcheck.align.nonlearned import nonlearned
from scratchcheck.align.sketch import Sketcher
from scratchcheck.arch import layout
from scratchcheck.io import open_model


def _dft_basis(n_fft: int) -> np.ndarray:
    """A Conv1d STFT filter bank: cos and sin rows of the DFT, ``[2 * bins, 1, n_fft]``."""
    k = np.arange(n_fft // 2 + 1)[:, None]
    angle = 2 * np.pi * k * np.arange(n_fft)[None, :] / n_fft
    return np.concatenate([np.cos(angle), -np.sin(angle)])[:, None, :].astype(np.float32)


@pytest.fixture
def reasons(build, save):
    rng = np.random.default_rng(0)
    weights = {
        "encoder.embed_positions.weight": build.sinusoidal_table(64, 32),
        "model.rotary_emb.inv_freq": build.inv_freq(32),
        "some.frequencies": build.inv_freq(16),  # an unknown name: recognised by its values
        "stft.forward_basis": _dft_basis(16),
        "h.0.attn.bias": np.tril(np.ones((1, 1, 16, 16), np.float32)),
        "model.embeddings.position_ids": np.arange(32, dtype=np.int64)[None],
        "projector.bias": np.zeros(32, np.float32),
        "norm.weight": np.ones(32, np.float32),
        "learned.small": (0.002 * rng.standard_normal((64, 32))).astype(np.float32),
        "learned.table": (0.02 * rng.standard_normal((512, 32))).astype(np.float32),
        "learned.gain": (1 + 0.05 * rng.standard_normal(32)).astype(np.float32),
        "learned.conv": (0.1 * rng.standard_normal((18, 1, 16))).astype(np.float32),
        "one.value": np.ones(1, np.float32),
        "scalar": np.array(0.5, np.float32),
    }
    with open_model(save("buffers", weights)) as checkpoint:
        yield nonlearned(layout(checkpoint), Sketcher(checkpoint))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("encoder.embed_positions.weight", "sinusoidal position table"),
        ("model.rotary_emb.inv_freq", "RoPE inverse frequencies"),
        ("some.frequencies", "RoPE inverse frequencies"),
        ("stft.forward_basis", "fixed signal-processing basis"),
        ("h.0.attn.bias", "mask buffer"),
        ("model.embeddings.position_ids", "index buffer"),
        ("projector.bias", "constant tensor (every value 0)"),
        ("norm.weight", "constant tensor (every value 1)"),
        ("one.value", "a single value"),
        ("scalar", "a single value"),
    ],
)
def test_non_learned_tensors_are_set_aside_with_their_reason(reasons, name, reason):
    assert reasons[name].startswith(reason)


def test_learned_tensors_are_kept(reasons):
    assert not [name for name in reasons if name.startswith("learned.")]


def test_quantised_expert_stacks_are_checked_one_expert_at_a_time(tmp_path, monkeypatch):
    """An untouched (constant) expert stack is found, a learned one kept, and neither is ever
    dequantised whole: a 4-bit stack of hundreds of experts would not fit in memory as float32."""
    import gguf
    from gguf import GGMLQuantizationType as Q

    rng = np.random.default_rng(1)
    learned = rng.standard_normal((4, 8, 64)).astype(np.float32)
    stacks = {
        "blk.0.ffn_up_exps.weight": gguf.quants.quantize(learned, Q.Q8_0),
        "blk.0.ffn_gate_exps.weight": gguf.quants.quantize(np.full((4, 8, 64), 0.5, np.float32), Q.Q8_0),
    }
    writer = gguf.GGUFWriter(tmp_path / "moe.gguf", "llama")
    for name, packed in stacks.items():
        writer.add_tensor(name, packed, raw_dtype=Q.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    seen = []
    real = gguf.quants.dequantize
    monkeypatch.setattr(
        gguf.quants, "dequantize", lambda data, kind: seen.append(data.shape) or real(data, kind)
    )
    with open_model(tmp_path / "moe.gguf") as checkpoint:
        found = nonlearned(layout(checkpoint), Sketcher(checkpoint))
    assert list(found) == ["blk.0.ffn_gate_exps.weight"]  # 0.5 to Q8_0's precision: 0.499969
    assert found["blk.0.ffn_gate_exps.weight"].startswith("constant tensor (every value 0.49")
    assert seen and all(shape == (8, 68) for shape in seen)  # one expert's rows of Q8_0 blocks


def test_a_learned_matrix_is_ruled_not_constant_with_one_read(build, save, monkeypatch):
    """A learned matrix varies within its first values: one contiguous read decides it, not a read
    per sketched element (on a cold page cache, a disk seek each). A tensor constant over that head
    but not beyond it is read further and kept as learned."""
    import os

    rng = np.random.default_rng(3)
    late = np.full((512, 512), 0.25, np.float32)
    late[-1, -1] = 0.3  # constant over the first 4,096 values, not over the whole
    weights = {"model.layers.0.mlp.down_proj.weight": rng.standard_normal((512, 512)).astype(np.float32)}
    calls = []
    real = os.preadv
    monkeypatch.setattr(
        os, "preadv", lambda fd, views, at: calls.append(sum(v.nbytes for v in views)) or real(fd, views, at)
    )
    with open_model(save("learned", weights)) as checkpoint:
        assert nonlearned(layout(checkpoint), Sketcher(checkpoint)) == {}
    assert calls == [4096 * 4]
    with open_model(save("late", {"late.varying": late})) as checkpoint:
        assert nonlearned(layout(checkpoint), Sketcher(checkpoint)) == {}


def test_every_projection_role_is_learned_by_construction(tmp_path):
    """Shared experts (DeepSeek, GLM, Qwen MoE) are projections like routed experts: the table
    checks, which read a tensor whole, never run on them (a fingerprint would read each in full)."""
    from scratchcheck.align.nonlearned import learned_by_construction
    from scratchcheck.io.writer import write_safetensors

    w = np.zeros((8, 4), np.float32)
    names = [
        "model.layers.1.mlp.shared_experts.gate_proj.weight",
        "model.layers.1.mlp.shared_experts.down_proj.weight",
        "model.layers.1.mlp.experts.0.up_proj.weight",
        "model.layers.1.mlp.gate.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    ]
    write_safetensors(tmp_path / "m.safetensors", {n: w for n in [*names, "model.norm.weight"]})
    with open_model(tmp_path / "m.safetensors") as checkpoint:
        learned = learned_by_construction(layout(checkpoint))
    assert learned == set(names)
