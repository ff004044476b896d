"""Quantised checkpoints: a GGUF's kept rows are read and dequantised alone (whole blocks), other
quantised tensors dequantised whole and counted so; fingerprints verify either way."""

import numpy as np
from fp_models import PLAN

from exporters import export_gguf
from scratchcheck import compare, open_model
from scratchcheck.fingerprint import fingerprint, sample, verify


def test_a_q8_gguf_fingerprints_verifies_and_compares_as_identical_to_itself(models, tmp_path):
    gguf_path = tmp_path / "model.gguf"
    with open_model(models["base"]) as checkpoint:
        export_gguf(checkpoint, gguf_path, quant="Q8_0", arch="llama", names="hf")
    fp = fingerprint(gguf_path, tmp_path / "q8.scfp", plan=PLAN)
    quantised = [t for t in fp.header["tensors"] if t["dtype"] == "Q8_0"]
    assert quantised and all(t["sample_dtype"] == "F32" for t in quantised)
    sampled = [t for t in quantised if t["stored"] == "sampled"]
    # Exactly the kept rows' blocks are read: a few percent where rows are sampled.
    assert sampled and all(
        t["bytes_read"] * t["shape"][0] == t["bytes"] * t["sample_shape"][0] for t in sampled
    )
    assert max(t["bytes_read"] / t["bytes"] for t in sampled if t["shape"][0] >= 256) < 0.05
    with open_model(gguf_path) as checkpoint:  # the same values as sampling the whole dequantised tensor
        for t in sampled:  # rotary (Q/K) rows included: read in the un-permuted order
            expected = sample(checkpoint.read_values(t["name"]), PLAN)[1]
            np.testing.assert_array_equal(fp.arrays[t["name"]], expected)
    assert any("attn_q" in t["name"] or "q_proj" in t["name"] for t in sampled)
    assert verify(gguf_path, tmp_path / "q8.scfp").ok
    assert compare(gguf_path, [tmp_path / "q8.scfp"]).verdict == "identical"
