"""Quantised checkpoints: dequantised and sampled in memory, counted as read whole, verifiable."""

from fp_models import PLAN

from exporters import export_gguf
from scratchcheck import compare, open_model
from scratchcheck.fingerprint import fingerprint, verify


def test_a_q8_gguf_fingerprints_verifies_and_compares_as_identical_to_itself(models, tmp_path):
    gguf_path = tmp_path / "model.gguf"
    with open_model(models["base"]) as checkpoint:
        export_gguf(checkpoint, gguf_path, quant="Q8_0", arch="llama", names="hf")
    fp = fingerprint(gguf_path, tmp_path / "q8.scfp", plan=PLAN)
    quantised = [t for t in fp.header["tensors"] if t["dtype"] == "Q8_0"]
    assert quantised and all(t["sample_dtype"] == "F32" for t in quantised)
    assert all(t["bytes_read"] == t["bytes"] for t in quantised)  # dequantised whole: said so
    assert verify(gguf_path, tmp_path / "q8.scfp").ok
    assert compare(gguf_path, [tmp_path / "q8.scfp"]).verdict == "identical"
