"""The safetensors reader: exact values per dtype, every lie a header can tell, FP8 scales."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from scratchcheck.errors import FormatError, NotFoundError
from scratchcheck.io.resolve import open_model
from scratchcheck.io.safetensors import SafetensorsFile


def write_raw(path: Path, header: dict, data: bytes) -> Path:
    """A safetensors file with exactly this header and data buffer, however wrong they are."""
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def test_every_dtype_reads_back_bit_exact_as_a_view(tmp_path: Path, dtype_samples, assert_same) -> None:
    path = tmp_path / "all.safetensors"
    save_file({name.lower(): array for name, array in dtype_samples.items()}, str(path))
    reader = SafetensorsFile(path)
    assert {info.name: info.dtype for info in reader.infos()} == {n.lower(): n for n in dtype_samples}
    for name, expected in dtype_samples.items():
        array = reader.read(name.lower())
        assert_same(array, expected)
        assert not array.flags.writeable and array.base is not None  # a view on the mapping


def test_empty_and_scalar_tensors(tmp_path: Path) -> None:
    path = tmp_path / "odd.safetensors"
    save_file({"empty": np.zeros((0, 4), np.float32), "scalar": np.array(2.5, np.float32)}, str(path))
    reader = SafetensorsFile(path)
    assert reader.read("empty").shape == (0, 4)
    assert reader.read("scalar").shape == () and float(reader.read("scalar")) == 2.5


@pytest.mark.parametrize(
    ("header", "data", "problem"),
    [
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
            b"\0" * 4,
            "truncated: tensors need 8",
        ),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "which needs 12"),
        ({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown dtype 'F33'"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "overlaps the previous tensor",
        ),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
            },
            b"\0" * 12,
            "leaves a gap of 4 bytes",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 6, "2 trailing bytes"),
        (
            {"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}},
            b"\0" * 4,
            "not a list of non-negative integers",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4, "are not [begin, end]"),
        ({"a": [1, 2]}, b"", "header entry is not an object"),
    ],
)
def test_lying_headers_are_one_line_format_errors(
    tmp_path: Path, header: dict, data: bytes, problem: str
) -> None:
    path = write_raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(FormatError) as caught:
        SafetensorsFile(path)
    message = str(caught.value)
    assert problem in message and str(path) in message and "\n" not in message


def test_header_longer_than_the_file(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b'{"a":')
    with pytest.raises(FormatError, match="truncated: header claims 1000 bytes"):
        SafetensorsFile(path)


def test_truncated_before_the_length_and_bad_json(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.safetensors"
    tiny.write_bytes(b"\x01\x02")
    with pytest.raises(FormatError, match="too short"):
        SafetensorsFile(tiny)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(FormatError, match="not valid UTF-8 JSON"):
        SafetensorsFile(garbage)


def test_cut_off_file_from_the_reference_writer(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_file({"w": np.ones((64, 64), np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FormatError, match="truncated"):
        SafetensorsFile(path)


def _sharded(folder: Path) -> Path:
    save_file({"a": np.arange(4, dtype=np.float32)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b": np.arange(3, dtype=np.int64)}, str(folder / "model-00002-of-00002.safetensors"))
    index = {
        "metadata": {},
        "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"},
    }
    path = folder / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    return path


def test_sharded_checkpoint_through_its_index(tmp_path: Path, assert_same) -> None:
    _sharded(tmp_path)
    checkpoint = open_model(tmp_path)
    assert [info.name for info in checkpoint.tensors()] == ["a", "b"]
    assert_same(checkpoint.read("b"), np.arange(3, dtype=np.int64))


def test_missing_shard_named_in_the_index(tmp_path: Path) -> None:
    _sharded(tmp_path)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(NotFoundError, match="missing shard named in model.safetensors.index.json"):
        open_model(tmp_path)


def test_index_that_lies_about_where_a_tensor_is(tmp_path: Path) -> None:
    index_path = _sharded(tmp_path)
    index = json.loads(index_path.read_text())
    index["weight_map"]["b"] = "model-00001-of-00002.safetensors"
    index["weight_map"]["c"] = "model-00002-of-00002.safetensors"
    index_path.write_text(json.dumps(index))
    with pytest.raises(
        FormatError, match="index puts tensor 'b' in model-00001-of-00002.safetensors, but it is found in"
    ):
        open_model(tmp_path)


def test_index_naming_a_shard_outside_the_folder(tmp_path: Path) -> None:
    index_path = _sharded(tmp_path)
    index_path.write_text(json.dumps({"weight_map": {"a": "../elsewhere.safetensors"}}))
    with pytest.raises(FormatError, match="unsafe shard path"):
        open_model(tmp_path)


# -- FP8 with scale tensors -----------------------------------------------------------------------
def test_block_scale_inv_dequantises_and_is_aux(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((300, 200)).astype(
        ml_dtypes.float8_e4m3fn
    )  # 3 x 2 blocks of 128, ragged edges
    scale_inv = rng.uniform(0.5, 2.0, (3, 2)).astype(np.float32)
    save_file({"w": weight, "w_scale_inv": scale_inv}, str(tmp_path / "model.safetensors"))
    checkpoint = open_model(tmp_path)
    expected = weight.astype(np.float32) * np.repeat(np.repeat(scale_inv, 128, 0), 128, 1)[:300, :200]
    np.testing.assert_array_equal(checkpoint.read_float("w"), expected)
    assert checkpoint.info("w_scale_inv").aux and not checkpoint.info("w").aux
    assert [info.name for info in checkpoint.weights()] == ["w"]


@pytest.mark.parametrize("scale_shape", [(), (1,), (6,), (6, 1)])
def test_per_tensor_and_per_row_weight_scale(tmp_path: Path, scale_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((6, 8)).astype(ml_dtypes.float8_e5m2)
    scale = rng.uniform(0.1, 1.0, scale_shape).astype(np.float32)
    save_file({"w": weight, "w_scale": scale}, str(tmp_path / "model.safetensors"))
    checkpoint = open_model(tmp_path)
    rows = scale.reshape(-1, 1) if scale.size > 1 else scale.reshape(())
    np.testing.assert_array_equal(checkpoint.read_float("w"), weight.astype(np.float32) * rows)
    assert checkpoint.info("w_scale").aux


def test_int8_weight_with_scale_in_another_shard(tmp_path: Path) -> None:
    weight = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    save_file({"w": weight}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(
        {"w_scale": np.array([0.5, 1.0, 2.0], np.float32)}, str(tmp_path / "model-00002-of-00002.safetensors")
    )
    index = {
        "weight_map": {"w": "model-00001-of-00002.safetensors", "w_scale": "model-00002-of-00002.safetensors"}
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    checkpoint = open_model(tmp_path)
    np.testing.assert_array_equal(
        checkpoint.read_float("w"), weight * np.array([[0.5], [1.0], [2.0]], np.float32)
    )


def test_scale_that_fits_no_scheme(tmp_path: Path) -> None:
    save_file(
        {"w": np.zeros((4, 4), ml_dtypes.float8_e4m3fn), "w_scale": np.ones(3, np.float32)},
        str(tmp_path / "m.safetensors"),
    )
    with pytest.raises(FormatError, match="fits no known scheme"):
        open_model(tmp_path).read_float("w")


def test_block_size_declared_in_the_config_wins(tmp_path: Path) -> None:
    # 300 x 200 with 3 x 2 scales fits blocks of 128 and of 100; the config says which.
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((300, 200)).astype(ml_dtypes.float8_e4m3fn)
    scale_inv = rng.uniform(0.5, 2.0, (3, 2)).astype(np.float32)
    save_file({"w": weight, "w_scale_inv": scale_inv}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(
        json.dumps({"quantization_config": {"weight_block_size": [100, 100]}})
    )
    expected = weight.astype(np.float32) * np.repeat(np.repeat(scale_inv, 100, 0), 100, 1)
    np.testing.assert_array_equal(open_model(tmp_path).read_float("w"), expected)
