"""Hostile torch checkpoints: each case is the minimal reproducer of a crash, hang, memory blow-up or
cross-file effect the fuzzer found, and must now be a one-line error naming the file (or read fine)."""

from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from scratchcheck.errors import FormatError, ScratchcheckError, UnsupportedError
from scratchcheck.io.limits import MAX_NESTING
from scratchcheck.io.torch_zip import TorchFile

PROTO2, PROTO4 = b"\x80\x02", b"\x80\x04"


def pickle_zip(
    path: Path, data_pkl: bytes, storages: dict[str, bytes] | None = None, deflate: bool = False
) -> Path:
    """A torch-style zip holding ``data_pkl`` as its object pickle."""
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", "little")
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def tensor_pickle(size: tuple[int, ...], stride: tuple[int, ...], numel: int, offset: int = 0) -> bytes:
    """``{"w": tensor}`` over float storage "0" of ``numel`` elements, spelled opcode by opcode."""

    class Storage:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> tuple | None:
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if isinstance(obj, Storage) else None

    class Tensor:
        def __reduce__(self) -> tuple:
            return torch._utils._rebuild_tensor_v2, (Storage(), offset, size, stride, False, {})

    buffer = __import__("io").BytesIO()
    Pickler(buffer, protocol=2).dump({"w": Tensor()})
    return buffer.getvalue()


def assert_one_line(error: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_pickle_that_modifies_a_storage_class_cannot_poison_later_files(tmp_path: Path) -> None:
    # BUILD on the FloatStorage stand-in with {"dtype": "I32"}: before, it loaded cleanly and every
    # later file in the process read float32 storages as int32.
    poison = (
        PROTO2 + b"}X\x01\x00\x00\x00wctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x03\x00\x00\x00I32sbs."
    )
    hostile = pickle_zip(tmp_path / "hostile.pt", poison)
    with pytest.raises(FormatError, match="modify a torch class") as caught:
        TorchFile(hostile)
    assert_one_line(caught, hostile)
    weights = torch.arange(6, dtype=torch.float32) / 7
    torch.save({"w": weights}, tmp_path / "honest.pt")
    honest = TorchFile(tmp_path / "honest.pt")
    assert honest.infos()[0].dtype == "F32"
    np.testing.assert_array_equal(honest.read("w"), weights.numpy())


@pytest.mark.parametrize(
    "target", [b"ctorch._utils\n_rebuild_tensor_v2\n", b"ctorch\nfloat32\n", b"ctorch\nTensor\n"]
)
def test_no_stand_in_accepts_build(tmp_path: Path, target: bytes) -> None:
    path = pickle_zip(tmp_path / "m.pt", PROTO2 + target + b"}X\x01\x00\x00\x00aK\x01sb.")
    with pytest.raises(FormatError):
        TorchFile(path)


@pytest.mark.parametrize(
    ("data_pkl", "problem"),
    [
        (PROTO2 + b"]r\xff\xff\xff\x0f.", "memo index"),  # LONG_BINPUT 0x0FFFFFFF: a 4 GB memo
        (PROTO4 + b"\x8e" + struct.pack("<Q", 2**62) + b"ab.", "corrupt pickle"),  # BINBYTES8
        (PROTO4 + b"\x96" + struct.pack("<Q", 2**62) + b"ab.", "corrupt pickle"),  # BYTEARRAY8
        (PROTO4 + b"\x8d" + struct.pack("<Q", 2**62) + b"ab.", "corrupt pickle"),  # BINUNICODE8
        (PROTO4 + b"\x95" + struct.pack("<Q", 2**62) + b"K\x01.", "corrupt pickle"),  # FRAME
        (PROTO4 + b"\x95" + struct.pack("<Q", 2**63) + b"K\x01.", "corrupt pickle"),  # OverflowError
    ],
    ids=["memo", "binbytes8", "bytearray8", "binunicode8", "frame", "frame-2**63"],
)
def test_lengths_and_memo_indices_are_checked_before_allocating(
    tmp_path: Path, data_pkl: bytes, problem: str
) -> None:
    path = pickle_zip(tmp_path / "m.pt", data_pkl)
    with pytest.raises(FormatError, match=problem) as caught:
        TorchFile(path)
    assert_one_line(caught, path)


def test_deep_nesting_and_self_reference_are_refused(tmp_path: Path) -> None:
    depth = MAX_NESTING * 20
    nested = pickle_zip(tmp_path / "deep.pt", PROTO2 + b"]" * depth + b"a" * (depth - 1) + b".")
    with pytest.raises(FormatError, match=f"nests deeper than {MAX_NESTING}"):
        TorchFile(nested)
    # L = []; L.append(L)
    cycle = pickle_zip(tmp_path / "cycle.pt", PROTO2 + b"]q\x00h\x00a.")
    with pytest.raises(FormatError, match="nests deeper"):
        TorchFile(cycle)


def test_a_list_shared_many_times_over_is_bounded(tmp_path: Path) -> None:
    # Each level is [previous, previous]: 40 levels are 2**40 paths to walk.
    body = b"]q\x00"
    for level in range(1, 41):
        body += b"(h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"lq" + bytes([level])
    path = pickle_zip(tmp_path / "laughs.pt", PROTO2 + body + b".")
    with pytest.raises(FormatError, match="too many items"):
        TorchFile(path)


@pytest.mark.parametrize(
    ("size", "stride", "numel", "problem"),
    [
        ((10**10,), (0,), 1, "overlap"),  # stride 0: one float read as 10**10
        ((2**63, 0), (1, 1), 1, "claims over"),
        ((2**40, 2**40), (0, 0), 1, "claims over"),
        ((2,), (1,), 2, None),
    ],
)
def test_shape_and_stride_arithmetic_is_checked(
    tmp_path: Path, size: tuple, stride: tuple, numel: int, problem: str | None
) -> None:
    path = pickle_zip(tmp_path / "m.pt", tensor_pickle(size, stride, numel), {"0": b"\0" * 4 * numel})
    if problem is None:
        assert TorchFile(path).read("w").tolist() == [0.0, 0.0]
        return
    with pytest.raises(FormatError, match=problem) as caught:
        TorchFile(path)
    assert_one_line(caught, path)


def test_decompression_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    bomb = PROTO2 + b"C\x00" + b"\x00" * (40 << 20)  # 40 MiB of zeros deflate to ~40 kB
    path = pickle_zip(tmp_path / "bomb.pt", bomb, deflate=True)
    with pytest.raises(FormatError, match="decompression limit") as caught:
        TorchFile(path)
    assert_one_line(caught, path)


def test_corrupt_deflate_stream_and_encrypted_member(tmp_path: Path) -> None:
    path = pickle_zip(tmp_path / "m.pt", tensor_pickle((2,), (1,), 2), {"0": b"\0" * 8}, deflate=True)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("archive/data.pkl")
    start = info.header_offset + 30 + len(info.filename)
    data[start : start + 8] = b"\xff" * 8
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(FormatError) as caught:
        TorchFile(corrupt)
    assert_one_line(caught, corrupt)
    encrypted = tmp_path / "encrypted.pt"
    raw = path.read_bytes()
    central = raw.index(b"PK\x01\x02")  # the first central directory entry: archive/data.pkl
    encrypted.write_bytes(raw[: central + 8] + bytes([raw[central + 8] | 1]) + raw[central + 9 :])
    with pytest.raises(UnsupportedError, match="encrypted"):
        TorchFile(encrypted)


def test_hostile_legacy_file_lengths(tmp_path: Path) -> None:
    # A legacy file is a run of pickles; the first one asks for 2**62 bytes.
    path = tmp_path / "legacy.bin"
    path.write_bytes(PROTO4 + b"\x8e" + struct.pack("<Q", 2**62) + b"ab.")
    with pytest.raises(ScratchcheckError) as caught:
        TorchFile(path)
    assert_one_line(caught, path)
