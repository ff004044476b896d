"""Quantised checkpoints: only the kept rows are read and dequantised alone, for GGUF (whole blocks),
int8 / FP8 with a scalar, per-row or block scale, and MXFP4 (a stack presented ``[E, in, out]`` read
by its stored rows); the values equal those sampled from the whole dequantised tensor."""

import json
import threading
from functools import partial
from http.server import ThreadingHTTPServer

import ml_dtypes
import numpy as np
import pytest
from fp_models import CONFIG, PLAN
from test_remote import RangeHandler

from exporters import export_gguf, export_onnx, quantise_int8_rows
from scratchcheck import compare, open_model, synthetic
from scratchcheck.fingerprint import fingerprint, sample, sample_positions, verify
from scratchcheck.fingerprint.fused import split_of
from scratchcheck.io.dequant import FP4_E2M1


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


def fp8_blocks(weight: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """FP8 e4m3 with one ``scale_inv`` per ``block x block`` tile (DeepSeek-V3 style, ragged edges)."""
    rows, cols = weight.shape
    tiles = (-(-rows // block), -(-cols // block))
    scale = np.ones(tiles, np.float32)
    for i in range(tiles[0]):
        for j in range(tiles[1]):
            tile = weight[i * block : (i + 1) * block, j * block : (j + 1) * block]
            scale[i, j] = max(float(np.abs(tile).max()), 1e-12) / 448.0
    per_element = scale[np.arange(rows)[:, None] // block, np.arange(cols)[None, :] // block]
    return (weight / per_element).astype(ml_dtypes.float8_e4m3fn), scale


def mxfp4(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[..., n]`` as MXFP4 blocks ``[..., n / 32, 16]`` and exponents ``[..., n / 32]``."""
    groups = weight.reshape(*weight.shape[:-1], -1, 32)
    exponent = np.ceil(np.log2(np.maximum(np.abs(groups).max(axis=-1), 1e-30) / 6.0))
    exponent = np.clip(exponent, -127, 128)
    scaled = groups / 2.0 ** exponent[..., None]
    codes = np.abs(scaled[..., None] - FP4_E2M1).argmin(axis=-1).astype(np.uint8)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return blocks, (exponent + 127).astype(np.uint8)


@pytest.fixture(scope="module")
def quantised(models, tmp_path_factory):
    """The base decoder with q/o in FP8 (100 x 100 blocks, declared in the config), gate/up/down in
    int8 with a per-row scale, k/v in int8 with one scale, layer 0's up projection in MXFP4."""
    with open_model(models["base"]) as checkpoint:
        weights = {i.name: np.array(checkpoint.read(i.name)) for i in checkpoint.weights()}
    stored = {}
    for name, weight in weights.items():
        if name == "model.layers.0.mlp.up_proj.weight":
            stored[name + "_blocks"], stored[name + "_scales"] = mxfp4(weight)
        elif "q_proj" in name or "o_proj" in name:
            stored[name], stored[name + "_scale_inv"] = fp8_blocks(weight, 100)
        elif "mlp." in name:
            q, scale = quantise_int8_rows(weight)
            stored[name], stored[name + "_scale"] = q, scale[:, None]
        elif "k_proj" in name or "v_proj" in name:
            scale = np.float32(np.abs(weight).max() / 127)
            stored[name] = np.rint(weight / scale).astype(np.int8)
            stored[name + "_scale"] = np.array(scale, np.float32)
        else:
            stored[name] = weight
    config = {**CONFIG, "quantization_config": {"quant_method": "fp8", "weight_block_size": [100, 100]}}
    folder = tmp_path_factory.mktemp("quantised") / "model"
    synthetic.save(stored, folder, config)
    return folder


def test_int8_fp8_and_mxfp4_fingerprints_read_only_the_kept_rows(quantised, tmp_path):
    fp = fingerprint(quantised, tmp_path / "q.scfp", plan=PLAN)
    records = {t["name"]: t for t in fp.header["tensors"]}
    assert {records[n]["dtype"] for n in records if records[n]["stored"] == "sampled"} >= {
        "F8_E4M3",
        "I8",
        "MXFP4",
    }
    with open_model(quantised) as checkpoint:
        for name, t in records.items():
            if t["dtype"] not in ("F8_E4M3", "I8", "MXFP4"):
                continue
            assert t["stored"] == "sampled" and t["sample_dtype"] == "F32"
            # The same values as sampling the whole dequantised tensor.
            np.testing.assert_array_equal(fp.arrays[name], sample(checkpoint.read_values(name), PLAN)[1])
            rows, columns = sample_positions(tuple(t["shape"]), PLAN)
            span = int(columns[-1] - columns[0] + 1)
            if "unit_features" in t:  # an output projection keeping unit features reads its kept rows whole
                span = t["shape"][1]
            if t["dtype"] == "MXFP4":  # kept rows whole: 4-bit blocks (in / 2 bytes) and exponents
                assert t["bytes_read"] == rows.size * (t["shape"][1] // 2 + t["shape"][1] // 32)
            elif "mlp." in name:  # the kept rows' spans and their per-row scales
                assert t["bytes_read"] == rows.size * (span + 4)
            else:  # a block scale (q, o) or the one scale (k, v) besides the kept rows' spans
                assert rows.size * span < t["bytes_read"] <= rows.size * span + 9 * 4
            if t["shape"][0] >= 256:
                assert t["bytes_read"] < 0.05 * t["bytes"]
    assert verify(quantised, tmp_path / "q.scfp").ok
    assert compare(quantised, [tmp_path / "q.scfp"]).verdict == "identical"


def test_a_quantised_copy_compared_with_a_fingerprint_agrees_with_the_full_compare(
    models, quantised, tmp_path
):
    fingerprint(models["base"], tmp_path / "base.scfp", plan=PLAN)
    full = compare(quantised, [models["base"]])
    sampled = compare(quantised, [tmp_path / "base.scfp"])
    assert full.verdict == sampled.verdict == "derived"
    assert [c.verdict for c in sampled.components] == [c.verdict for c in full.components]


def test_an_mxfp4_expert_stack_is_read_by_its_stored_rows(tmp_path):
    """``[E, out, G, 16]`` blocks presented as ``[E, in, out]``: the kept columns are the stored rows."""
    rng = np.random.default_rng(9)
    experts, out, inp = 4, 512, 256
    p = "model.layers.0.mlp.experts.gate_up_proj"
    blocks, scales = mxfp4(rng.standard_normal((experts, out, inp)).astype(np.float32) / 16)
    synthetic.save({p + "_blocks": blocks, p + "_scales": scales}, tmp_path / "mx")
    (tmp_path / "mx" / "config.json").write_text(json.dumps({"model_type": "gpt_oss", "hidden_size": inp}))
    fp = fingerprint(tmp_path / "mx", plan=PLAN)
    t = fp.tensor(p)
    assert t["shape"] == [experts, inp, out] and t["stored"] == "sampled"
    # GPT-OSS's gate and up columns alternate: each half is sampled as a separate tensor would be.
    assert t["split"] == {"axis": 2, "parts": [out // 2] * 2, "kept": t["split"]["kept"], "interleaved": True}
    positions = sample_positions((experts, inp, out), PLAN, split_of(t))
    with open_model(tmp_path / "mx") as checkpoint:
        np.testing.assert_array_equal(fp.arrays[p], checkpoint.read_values(p)[np.ix_(*positions)])
    assert t["bytes_read"] == experts * positions[-1].size * (inp // 2 + inp // 32)
    assert t["bytes_read"] < 0.05 * t["bytes"]


@pytest.mark.parametrize("style", ["qdq", "dynamic"])
def test_an_onnx_int8_export_dequantises_with_its_zero_point_in_a_fingerprint(models, style, tmp_path):
    """ONNX dequantises on its own (``(q - zero_point) * scale``), though its names look like a
    weight with an ``X_scale`` beside it: its rule, not the checkpoint's, gives the kept values."""
    matrices = ("model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight")
    with open_model(models["base"]) as checkpoint:
        export_onnx(checkpoint, tmp_path / "model.onnx", int8=matrices, int8_style=style)
    fp = fingerprint(tmp_path / "model.onnx", plan=PLAN)
    with open_model(tmp_path / "model.onnx") as checkpoint:
        for name in matrices:
            assert fp.tensor(name)["stored"] == "sampled"
            np.testing.assert_array_equal(fp.arrays[name], sample(checkpoint.read_values(name), PLAN)[1])


def test_a_remote_quantised_model_is_fingerprinted_from_its_kept_rows(quantised):
    """Over HTTP, only the kept rows and their scales are fetched, not every quantised tensor."""
    counter: list[str] = []
    handler = partial(RangeHandler, folder=quantised, flaky=False, counter=counter)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.safetensors"
        remote = fingerprint(url, plan=PLAN, allow_network=True)
    finally:
        server.shutdown()
        server.server_close()
    local = fingerprint(quantised, plan=PLAN)
    counted = [(t["sha256"], t["bytes_read"]) for t in local.header["tensors"]]
    assert [(t["sha256"], t["bytes_read"]) for t in remote.header["tensors"]] == counted
    # Half the file is quantised weights (the rest the float32 embeddings): a whole read of them
    # would fetch that half; the headers and the kept rows are under a tenth.
    assert remote.header["reads"]["bytes_fetched"] < 0.1 * (quantised / "model.safetensors").stat().st_size
