"""GGUF and ONNX exports of a model pair 100% of their learned tensors with the source, by names,
layouts and content; a sinusoidal table and an ``inv_freq`` buffer are set aside with their reason."""

import numpy as np
import pytest

from exporters import export_gguf, export_onnx
from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.io import open_model

DECODER = {"layers": 3, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}
CONFIG = S.llama_config(**DECODER)


@pytest.fixture
def source(build, save):
    weights = S.llama_decoder(1, **DECODER)
    for i in range(DECODER["layers"]):
        weights[f"model.layers.{i}.self_attn.rotary_emb.inv_freq"] = build.inv_freq(16)
    weights["model.embed_positions.weight"] = build.sinusoidal_table(32, 64)
    with open_model(save("source", weights, CONFIG)) as checkpoint:
        yield checkpoint


def _check(export, source, written, opened):
    from scratchcheck.arch import layout

    result = align(opened(export), layout(source))
    reasons = dict(result.excluded)
    assert reasons["model.embed_positions.weight"].startswith("sinusoidal position table")
    assert reasons["model.layers.0.self_attn.rotary_emb.inv_freq"].startswith("RoPE inverse frequencies")
    learned = {i.name for i in source.weights()} - set(reasons)
    assert {p.reference.name for p in result.pairs} == learned
    assert all(written.get(p.suspect.name, p.suspect.name) == p.reference.name for p in result.pairs)
    for pair in result.pairs:
        a, b = np.asarray(pair.suspect.load(), np.float32), np.asarray(pair.reference.load(), np.float32)
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999, pair
    assert not result.unpaired_suspect and not result.not_comparable
    return result


def test_gguf_export_with_rotary_permutation_pairs_every_learned_tensor(source, tmp_path, opened):
    path = tmp_path / "model.gguf"
    written = export_gguf(source, path, quant="Q8_0", arch="llama", permute_qk=True, n_head=4, n_head_kv=2)
    result = _check(path, source, written, opened)
    assert {p.paired_by for p in result.pairs} == {"role"}


def test_onnx_export_with_anonymous_transposed_and_int8_weights_pairs_every_learned_tensor(
    source, tmp_path, opened
):
    path = tmp_path / "model.onnx"
    matrices = [i.name for i in source.weights() if ".layers." in i.name and len(i.shape) == 2]
    written = export_onnx(
        source,
        path,
        anonymous=[n for n in matrices if "mlp" in n or "q_proj" in n],
        int8=[n for n in matrices if "k_proj" in n],
    )
    result = _check(path, source, written, opened)
    content = [p for p in result.pairs if p.paired_by == "content"]
    assert len(content) == 4 * DECODER["layers"]
    assert all(p.suspect.name.startswith("onnx::MatMul_") and "transposed" in p.transform for p in content)
