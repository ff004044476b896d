"""Fused QKV and gate/up tensors are sampled part by part: each canonical view of a fingerprint holds
the positions a separate tensor would keep, so a fused model and a split copy compare on fingerprints
as they do in full."""

import numpy as np
import pytest
from fp_models import CONFIG, PLAN, decoder, fused

from scratchcheck import compare, open_model, synthetic
from scratchcheck.arch import layout
from scratchcheck.errors import FormatError
from scratchcheck.fingerprint import fingerprint, open_fingerprint, read, sample, verify, write


def gpt2(seed: int, layers: int = 2, hidden: int = 128) -> synthetic.Weights:
    """GPT-2's Conv1D layout: linear weights stored ``[in, out]``, QKV fused in ``c_attn``."""
    rng = np.random.default_rng(seed)
    w = {"transformer.wte.weight": rng.standard_normal((512, hidden)).astype(np.float32)}
    for i in range(layers):
        p = f"transformer.h.{i}."
        for name, shape in (
            ("attn.c_attn", (hidden, 3 * hidden)),
            ("attn.c_proj", (hidden, hidden)),
            ("mlp.c_fc", (hidden, 4 * hidden)),
            ("mlp.c_proj", (4 * hidden, hidden)),
        ):
            w[p + name + ".weight"] = rng.standard_normal(shape).astype(np.float32)
    return w


def stacked_experts(weights: synthetic.Weights, *, prefix: str, interleaved: bool) -> synthetic.Weights:
    """Experts stacked the Hugging Face way, ``[E, in, out]``: GPT-OSS (``mlp.``, gate and up columns
    alternating) or Llama 4 (``feed_forward.``, halves)."""
    out = {n: w for n, w in weights.items() if ".experts." not in n}
    for layer in sorted({n.split(".experts.")[0] for n in weights if ".experts." in n}):
        gate, up, down = (
            np.stack([weights[f"{layer}.experts.{e}.{x}_proj.weight"] for e in range(4)])
            for x in ("gate", "up", "down")
        )
        if interleaved:
            gate_up = np.empty((4, 2 * gate.shape[1], gate.shape[2]), np.float32)
            gate_up[:, 0::2], gate_up[:, 1::2] = gate, up
        else:
            gate_up = np.concatenate([gate, up], axis=1)
        stem = layer.removesuffix(".mlp") + f".{prefix}.experts."
        out[stem + "gate_up_proj"] = np.ascontiguousarray(gate_up.transpose(0, 2, 1))
        out[stem + "down_proj"] = np.ascontiguousarray(down.transpose(0, 2, 1))
    return out


MOE = synthetic.llama_decoder(1, layers=2, hidden=128, heads=4, kv_heads=2, experts=4, intermediate=128)
MOE_CONFIG = synthetic.llama_config(layers=2, hidden=128, heads=4, kv_heads=2, intermediate=128)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Folders: ``split`` (the base decoder), ``fused`` (a fused copy of a fine-tune of it),
    ``other`` (a fused independent decoder); and their fingerprints ``*_fp``."""
    root = tmp_path_factory.mktemp("fused")
    base = decoder(1)
    folders = {
        "split": synthetic.save(base, root / "split", CONFIG),
        "fused": synthetic.save(fused(synthetic.fine_tune(base, 0.5, seed=3)), root / "fused", CONFIG),
        "other": synthetic.save(fused(decoder(2)), root / "other", CONFIG),
    }
    for name, folder in list(folders.items()):
        fingerprint(folder, root / f"{name}.scfp", plan=PLAN)
        folders[name + "_fp"] = root / f"{name}.scfp"
    return folders


@pytest.mark.parametrize(
    ("weights", "config"),
    [
        (fused(decoder(1)), CONFIG),
        (gpt2(1), {"model_type": "gpt2", "n_embd": 128, "n_head": 4}),
        (stacked_experts(MOE, prefix="mlp", interleaved=True), {**MOE_CONFIG, "model_type": "gpt_oss"}),
        (
            stacked_experts(MOE, prefix="feed_forward", interleaved=False),
            {**MOE_CONFIG, "model_type": "llama4"},
        ),
    ],
    ids=["phi3-qkv-gate-up", "gpt2-c-attn", "gpt-oss-experts", "llama4-experts"],
)
def test_each_view_of_a_fused_fingerprint_holds_what_a_separate_tensor_keeps(weights, config, tmp_path):
    folder = synthetic.save(weights, tmp_path / "model", config)
    fingerprint(folder, tmp_path / "model.scfp", plan=PLAN)
    with open_model(folder) as model, open_fingerprint(tmp_path / "model.scfp") as fp:
        full = {e.view.label: e for e in layout(model).entries}
        parts = [e for e in layout(fp).entries if "[" in e.view.label]
        roles = {e.role.split(".")[1] for e in parts}
        assert roles >= {"q", "k", "v"} or roles >= {"gate", "up"}
        for entry in parts:
            whole = full[entry.view.label]
            assert entry.role == whole.role and entry.view.numel == whole.view.numel
            np.testing.assert_array_equal(entry.view.load(), sample(whole.view.load(), PLAN)[1])
    assert verify(folder, tmp_path / "model.scfp").ok


def test_a_fused_fine_tune_of_a_split_model_is_derived_on_fingerprints_as_in_full(pair):
    full = compare(pair["fused"], [pair["split"]])
    assert full.verdict == "derived"
    for suspect, reference in (
        (pair["fused_fp"], pair["split_fp"]),
        (pair["fused"], pair["split_fp"]),
        (pair["split_fp"], pair["fused"]),
    ):
        sampled = compare(suspect, [reference])
        assert sampled.verdict == "derived"
        assert [(c.verdict, c.kind) for c in sampled.components] == [
            (c.verdict, c.kind) for c in full.components
        ]
        assert all(c.coverage == 1.0 for c in sampled.components)


def test_an_independent_fused_model_is_not_derived_from_a_split_one_on_fingerprints(pair):
    for suspect, reference in ((pair["other_fp"], pair["split_fp"]), (pair["other"], pair["split_fp"])):
        assert compare(suspect, [reference]).verdict != "derived"


def test_a_split_that_does_not_fit_the_sample_is_a_one_line_error(pair, tmp_path):
    fp = read(pair["fused_fp"])
    record = next(t for t in fp.header["tensors"] if "split" in t)
    assert record["split"]["axis"] == 0 and sum(record["split"]["kept"]) == record["sample_shape"][0]
    record["split"]["kept"][0] += 1
    write(fp, tmp_path / "lie.scfp")
    with pytest.raises(FormatError, match=r"lie\.scfp: tensor .*qkv_proj.* split does not fit"):
        read(tmp_path / "lie.scfp")


def test_a_fused_tensor_sampled_by_its_stored_shape_is_not_cut_into_parts(pair, tmp_path):
    """Without a recorded split (a fingerprint made before parts were sampled alone), the kept rows
    do not fall into q, k and v: the tensor stays whole under its fused role."""
    fp = read(pair["fused_fp"])
    for record in fp.header["tensors"]:
        record.pop("split", None)
    write(fp, tmp_path / "old.scfp")
    with open_fingerprint(tmp_path / "old.scfp") as opened:
        roles = {e.role for e in layout(opened).entries if "qkv_proj" in e.view.name}
    assert roles == {"attn.qkv.weight"}
