"""The GGUF reader: float types bit-exact, every dequantisable type, llama Q/K permutation undone."""

from __future__ import annotations

from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf.quants import _type_traits

from exporters import export_gguf
from scratchcheck.errors import FormatError, UnsupportedError
from scratchcheck.io.base import Checkpoint
from scratchcheck.io.gguf import GGUFFile, permute_rows, unpermute_rows
from scratchcheck.io.resolve import open_model

RNG = np.random.default_rng(7)
# Types gguf can both quantise and dequantise: compared against its own round trip.
ROUND_TRIP = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "TQ1_0", "TQ2_0", "MXFP4"]


def write(
    path: Path, tensors: dict[str, np.ndarray | tuple[np.ndarray, Q]], arch: str = "llama", **kv: int
) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    for key, value in kv.items():
        writer.add_uint32(f"{arch}.{key.replace('__', '.')}", value)
    for name, value in tensors.items():
        if isinstance(value, tuple):
            writer.add_tensor(name, value[0], raw_dtype=value[1])
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_float_types_read_bit_exact_as_views(tmp_path: Path, assert_same) -> None:
    f32 = RNG.standard_normal((3, 32)).astype(np.float32)
    f16 = RNG.standard_normal((2, 32)).astype(np.float16)
    bf16 = RNG.standard_normal((4, 32)).astype(ml_dtypes.bfloat16)
    ints = np.array([-5, 0, 7, 2**31 - 1], dtype=np.int32)
    path = write(
        tmp_path / "m.gguf",
        {"f32": f32, "f16": f16, "bf16": (bf16.view(np.uint8), Q.BF16), "i32": ints, "f64": np.arange(3.0)},
    )
    reader = GGUFFile(path)
    assert {i.name: (i.shape, i.dtype) for i in reader.infos()} == {
        "f32": ((3, 32), "F32"),
        "f16": ((2, 32), "F16"),
        "bf16": ((4, 32), "BF16"),
        "i32": ((4,), "I32"),
        "f64": ((3,), "F64"),
    }
    for name, expected in {"f32": f32, "f16": f16, "bf16": bf16, "i32": ints}.items():
        array = reader.read(name)
        assert_same(array, expected)
        assert array.base is not None  # a view on the memory map
        np.testing.assert_array_equal(reader.read_float(name), expected.astype(np.float32))
    assert reader.read_float("f32").dtype == np.float32


def test_shapes_are_in_numpy_order(tmp_path: Path) -> None:
    array = RNG.standard_normal((2, 3, 32)).astype(np.float32)
    reader = GGUFFile(write(tmp_path / "m.gguf", {"t": array}))
    assert reader.infos()[0].shape == (2, 3, 32)
    np.testing.assert_array_equal(reader.read("t"), array)


@pytest.mark.parametrize("kind", ROUND_TRIP)
def test_quantised_types_match_gguf_round_trip(tmp_path: Path, kind: str) -> None:
    values = RNG.standard_normal((4, 512)).astype(np.float32)
    packed = gguf.quants.quantize(values, Q[kind])
    reader = GGUFFile(write(tmp_path / "m.gguf", {"w": (packed, Q[kind])}))
    info = reader.infos()[0]
    assert (info.shape, info.dtype, info.nbytes) == ((4, 512), kind, packed.nbytes)
    np.testing.assert_array_equal(reader.read("w"), packed)  # raw blocks as stored
    np.testing.assert_array_equal(reader.read_float("w"), gguf.quants.dequantize(packed, Q[kind]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # random scale bytes decode to inf/NaN at times
def test_every_dequantisable_type_is_wired(tmp_path: Path) -> None:
    # K-quants and i-quants have no quantiser in gguf-py: random block bytes, compared with its own
    # dequantiser, prove each type reaches it with the right shapes.
    kinds = [k for k in _type_traits if k.name not in ("BF16",)]
    tensors = {}
    for kind in kinds:
        block, size = gguf.GGML_QUANT_SIZES[kind]
        raw = RNG.integers(0, 256, (2, 512 // block * size), dtype=np.uint8)
        tensors[kind.name] = (raw, kind)
    reader = GGUFFile(write(tmp_path / "m.gguf", tensors))
    for kind in kinds:
        expected = gguf.quants.dequantize(tensors[kind.name][0], kind)
        np.testing.assert_array_equal(reader.read_float(kind.name), expected, err_msg=kind.name)
        assert reader.read_float(kind.name).shape == (2, 512)


def test_type_without_a_dequantiser_is_unsupported(tmp_path: Path) -> None:
    block, size = gguf.GGML_QUANT_SIZES[Q.Q8_K]
    reader = GGUFFile(write(tmp_path / "m.gguf", {"w": (np.zeros((1, size), np.uint8), Q.Q8_K)}))
    assert reader.infos()[0].dtype == "Q8_K"
    with pytest.raises(UnsupportedError, match="GGML type Q8_K cannot be dequantised"):
        reader.read_float("w")


def test_unknown_type_number_is_unsupported(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", {"w": np.zeros(32, np.float32)})
    data = bytearray(path.read_bytes())
    # The tensor-info record ends with: n_dims (u32), dims (u64 each), type (u32), offset (u64).
    info_at = data.index(b"w", 24) + 1
    type_at = info_at + 4 + 8
    assert int.from_bytes(data[type_at : type_at + 4], "little") == Q.F32
    data[type_at : type_at + 4] = (250).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedError, match="250"):
        GGUFFile(path)


def test_truncated_and_garbage_files(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", {"w": RNG.standard_normal((64, 64)).astype(np.float32)})
    data = path.read_bytes()
    for cut in (len(data) - 100, 40, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError) as caught:
            GGUFFile(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    path.write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(FormatError):
        GGUFFile(path)


def test_metadata_is_exposed(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_head_count(8)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b", "<s>"])
    writer.add_tensor("w", np.zeros(32, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = GGUFFile(path)
    assert reader.architecture == "llama"
    assert reader.metadata["llama.attention.head_count"] == 8
    assert reader.metadata["tokenizer.ggml.model"] == "gpt2"
    assert reader.metadata["tokenizer.ggml.tokens"] == ["a", "b", "<s>"]


# -- llama.cpp's Q/K permutation ------------------------------------------------------------------
def test_unpermute_inverts_the_converters_permute() -> None:
    rows = np.arange(24 * 3, dtype=np.float32).reshape(24, 3)
    permuted = permute_rows(rows, 3)
    assert not np.array_equal(permuted, rows)
    np.testing.assert_array_equal(unpermute_rows(permuted, 3), rows)
    # llama.cpp's order within one head of 4 rows: pairs (0, 2), (1, 3) interleaved.
    np.testing.assert_array_equal(permute_rows(np.arange(4.0), 1), [0, 2, 1, 3])


def test_grouped_query_attention_reads_back_unpermuted(tmp_path: Path) -> None:
    n_head, n_kv, head_dim, hidden = 8, 2, 16, 64
    q = RNG.standard_normal((n_head * head_dim, hidden)).astype(np.float32)
    k = RNG.standard_normal((n_kv * head_dim, hidden)).astype(np.float32)
    q_bias = RNG.standard_normal(n_head * head_dim).astype(np.float32)
    tensors = {
        "blk.0.attn_q.weight": permute_rows(q, n_head),
        "blk.0.attn_k.weight": (gguf.quants.quantize(permute_rows(k, n_kv), Q.Q8_0), Q.Q8_0),
        "blk.0.attn_q.bias": permute_rows(q_bias, n_head),
        "blk.0.attn_v.weight": k,
    }
    path = write(tmp_path / "m.gguf", tensors, attention__head_count=n_head, attention__head_count_kv=n_kv)
    reader = GGUFFile(path)
    np.testing.assert_array_equal(reader.read("blk.0.attn_q.weight"), q)
    np.testing.assert_array_equal(reader.read_float("blk.0.attn_q.bias"), q_bias)
    expected_k = unpermute_rows(gguf.quants.dequantize(tensors["blk.0.attn_k.weight"][0], Q.Q8_0), n_kv)
    np.testing.assert_array_equal(reader.read_float("blk.0.attn_k.weight"), expected_k)
    np.testing.assert_allclose(reader.read_float("blk.0.attn_k.weight"), k, atol=0.05)
    notes = {i.name: i.note for i in reader.infos()}
    assert "8 heads" in notes["blk.0.attn_q.weight"] and "2 heads" in notes["blk.0.attn_k.weight"]
    assert notes["blk.0.attn_v.weight"] == ""


def test_archs_the_converter_does_not_permute_are_left_alone(tmp_path: Path) -> None:
    q = RNG.standard_normal((32, 16)).astype(np.float32)
    for arch in ("qwen2", "llama4", "bert"):
        path = write(
            tmp_path / f"{arch}.gguf", {"blk.0.attn_q.weight": q}, arch=arch, attention__head_count=4
        )
        np.testing.assert_array_equal(GGUFFile(path).read("blk.0.attn_q.weight"), q)


def test_missing_head_count_is_a_format_error(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", {"blk.0.attn_q.weight": np.zeros((8, 32), np.float32)})
    with pytest.raises(FormatError, match="head_count is missing"):
        GGUFFile(path)


# -- exports of the real all-MiniLM-L6-v2 ---------------------------------------------------------
def _compare(export: Checkpoint, source: Checkpoint, names: dict[str, str], atol: float) -> None:
    for exported, original in names.items():
        expected = source.read_float(original)
        actual = export.read_float(exported)
        if atol == 0:
            np.testing.assert_array_equal(actual, expected, err_msg=exported)
        else:
            np.testing.assert_allclose(actual, expected, atol=atol, rtol=0, err_msg=exported)


def test_minilm_f32_export_reads_back_exactly(tmp_path: Path, minilm: Checkpoint) -> None:
    names = export_gguf(minilm, tmp_path / "minilm.gguf")
    assert names["blk.0.attn_q.weight"] == "encoder.layer.0.attention.self.query.weight"
    export = open_model(tmp_path / "minilm.gguf")
    assert export.format == "gguf" and export.num_params == minilm.num_params
    _compare(export, minilm, names, atol=0)


def test_minilm_q8_0_export_within_quantisation_error(tmp_path: Path, minilm: Checkpoint) -> None:
    names = export_gguf(minilm, tmp_path / "minilm-q8.gguf", quant="Q8_0")
    export = open_model(tmp_path / "minilm-q8.gguf")
    assert export.info("blk.0.attn_q.weight").dtype == "Q8_0"
    assert export.info("blk.0.attn_q.bias").dtype == "F32"  # 1-D stays float, as in llama.cpp
    for exported, original in names.items():
        expected = minilm.read_float(original)
        # Q8_0: one scale d = max|block| / 127 per 32 values, itself stored as float16, so
        # |error| <= d / 2 (rounding) + 127 * d * 2**-11 (the scale's own rounding) < 0.6 d.
        bound = 0.6 * np.abs(expected).max() / 127 if export.info(exported).dtype == "Q8_0" else 0
        np.testing.assert_allclose(
            export.read_float(exported), expected, atol=bound, rtol=0, err_msg=exported
        )


def test_minilm_as_llama_with_permuted_qk_reads_back_unpermuted(tmp_path: Path, minilm: Checkpoint) -> None:
    path = tmp_path / "minilm-llama.gguf"
    names = export_gguf(minilm, path, arch="llama", permute_qk=True, n_head=12)
    stored = gguf.GGUFReader(path).get_tensor(
        [t.name for t in gguf.GGUFReader(path).tensors].index("blk.0.attn_q.weight")
    )
    source_q = minilm.read_float("encoder.layer.0.attention.self.query.weight")
    assert not np.array_equal(np.asarray(stored.data), source_q)  # the file really is permuted
    _compare(open_model(path), minilm, names, atol=0)


def test_one_expert_of_a_quantised_stack_is_dequantised_alone(tmp_path: Path, monkeypatch) -> None:
    """A view of expert e dequantises expert e only: never the whole stack once per expert."""
    from scratchcheck.arch import layout

    stack = RNG.standard_normal((3, 4, 64)).astype(np.float32)
    packed = gguf.quants.quantize(stack, Q.Q8_0)
    full = gguf.quants.dequantize(packed, Q.Q8_0)
    path = write(tmp_path / "moe.gguf", {"blk.0.ffn_up_exps.weight": (packed, Q.Q8_0)})
    seen = []
    real = gguf.quants.dequantize
    monkeypatch.setattr(
        gguf.quants, "dequantize", lambda data, kind: seen.append(data.shape) or real(data, kind)
    )
    with open_model(path) as model:
        entries = [e for e in layout(model).entries if e.role == "expert.up.weight"]
        assert [e.expert for e in entries] == [0, 1, 2]
        for entry in entries:
            np.testing.assert_array_equal(entry.view.load(), full[entry.expert])
        np.testing.assert_array_equal(model.read_float("blk.0.ffn_up_exps.weight", 1), full[1])
    assert seen == [packed.shape[1:]] * 4
