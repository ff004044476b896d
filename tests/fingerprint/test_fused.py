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
    [(fused(decoder(1)), CONFIG), (gpt2(1), {"model_type": "gpt2", "n_embd": 128, "n_head": 4})],
    ids=["phi3-qkv-gate-up", "gpt2-c-attn"],
)
def test_each_view_of_a_fused_fingerprint_holds_what_a_separate_tensor_keeps(weights, config, tmp_path):
    folder = synthetic.save(weights, tmp_path / "model", config)
    fingerprint(folder, tmp_path / "model.scfp", plan=PLAN)
    with open_model(folder) as model, open_fingerprint(tmp_path / "model.scfp") as fp:
        full = {e.view.label: e for e in layout(model).entries}
        parts = [e for e in layout(fp).entries if "[" in e.view.label]
        assert {e.role.split(".")[1] for e in parts} >= {"q", "k", "v"}
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
