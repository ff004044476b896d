"""The npz reader: views for stored members, inflation for compressed ones, never pickle."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from scratchcheck.errors import FormatError, UnsafePickleError
from scratchcheck.io.npz import NpzFile
from scratchcheck.io.resolve import open_model

# ml_dtypes arrays (bfloat16, float8) are written by np.save as raw void and are not portable.
NUMPY_DTYPES = ["BOOL", "U8", "I8", "I16", "I32", "I64", "F16", "F32", "F64"]


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "compressed"])
def test_every_numpy_dtype_reads_back_bit_exact(
    tmp_path: Path, compressed: bool, dtype_samples, assert_same
) -> None:
    arrays = {name: dtype_samples[name] for name in NUMPY_DTYPES}
    path = tmp_path / "m.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    reader = NpzFile(path)
    assert {i.name: i.dtype for i in reader.infos()} == {name: name for name in arrays}
    for name, expected in arrays.items():
        array = reader.read(name)
        assert_same(array, expected)
        if not compressed:
            assert array.base is not None  # a view on the mapped file


def test_stored_members_are_views_on_the_mapping(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", w=np.arange(1000, dtype=np.float32))
    array = NpzFile(tmp_path / "m.npz").read("w")
    assert not array.flags.owndata and not array.flags.writeable


def test_fortran_order_big_endian_and_scalars(tmp_path: Path) -> None:
    fortran = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    big = np.arange(5, dtype=">i4")
    np.savez(tmp_path / "m.npz", f=fortran, b=big, s=np.float32(1.5))
    reader = NpzFile(tmp_path / "m.npz")
    np.testing.assert_array_equal(reader.read("f"), fortran)
    assert not reader.read("f").flags.owndata
    np.testing.assert_array_equal(reader.read("b"), big)
    assert {i.name: i.dtype for i in reader.infos()} == {"f": "F64", "b": "I32", "s": "F32"}
    assert reader.read("s").shape == ()


def test_open_model_and_read_float(tmp_path: Path) -> None:
    np.savez(tmp_path / "weights.npz", **{"layer.0.w": np.ones((2, 2), np.float16)})
    checkpoint = open_model(tmp_path)
    assert checkpoint.format == "npz"
    np.testing.assert_array_equal(checkpoint.read_float("layer.0.w"), np.ones((2, 2), np.float32))


def test_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", o=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(UnsafePickleError, match="object array, which needs pickle"):
        NpzFile(tmp_path / "m.npz")


def test_lying_and_truncated_members(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, w=np.zeros((8, 8), np.float32))
    header = np.lib.format.header_data_from_array_1_0(np.zeros((9, 8), np.float32))
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as archive, archive.open("w.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, header)
        member.write(np.zeros((8, 8), np.float32).tobytes())
    with pytest.raises(FormatError, match=r"256 data bytes for shape \(9, 8\)"):
        NpzFile(tmp_path / "lie.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or damaged zip archive"):
        NpzFile(path)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(FormatError):
        NpzFile(tmp_path / "bad.npz")


def test_bad_npy_header(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 5}    \n")
    with pytest.raises(FormatError, match="bad .npy header"):
        NpzFile(tmp_path / "m.npz")
