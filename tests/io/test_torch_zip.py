"""The torch reader: exact values from torch.save (zip and legacy), and pickles that must never run."""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from malicious import Evil, malicious_payloads
from scratchcheck.errors import FormatError, UnsafePickleError, UnsupportedError
from scratchcheck.io.resolve import open_model
from scratchcheck.io.torch_zip import TorchFile

FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


def to_torch(array: np.ndarray) -> torch.Tensor:
    """The same bits as a torch tensor (torch.from_numpy knows neither bfloat16 nor float8)."""
    special = {"bfloat16": (np.uint16, torch.bfloat16), "float8_e4m3fn": (np.uint8, torch.float8_e4m3fn)}
    special["float8_e5m2"] = (np.uint8, torch.float8_e5m2)
    if array.dtype.name in special:
        raw, dtype = special[array.dtype.name]
        return torch.from_numpy(array.view(raw).copy()).view(dtype)
    return torch.from_numpy(array.copy())


def save(obj: object, path: Path, legacy: bool) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


@FORMATS
def test_every_dtype_reads_back_bit_exact(tmp_path: Path, legacy: bool, dtype_samples, assert_same) -> None:
    path = save({name: to_torch(a) for name, a in dtype_samples.items()}, tmp_path / "model.bin", legacy)
    reader = TorchFile(path)
    assert {info.name: info.dtype for info in reader.infos()} == {name: name for name in dtype_samples}
    for name, expected in dtype_samples.items():
        array = reader.read(name)
        assert_same(array, expected)
        assert array.base is not None and not array.flags.writeable  # a view on the mapped file


@FORMATS
def test_strided_tied_and_parameter_tensors(tmp_path: Path, legacy: bool) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    linear = torch.nn.Linear(3, 2)
    state = {
        "transposed": base.t(),
        "sliced": base[1:, ::2],
        "embed.weight": base,
        "lm_head.weight": base,  # tied: the same storage under two names
        **linear.state_dict(keep_vars=True),  # nn.Parameter objects, pickled through _rebuild_parameter
    }
    reader = TorchFile(save(state, tmp_path / "model.pt", legacy))
    for name, tensor in state.items():
        np.testing.assert_array_equal(reader.read(name), tensor.detach().numpy())
    assert np.shares_memory(reader.read("embed.weight"), reader.read("lm_head.weight"))
    assert np.shares_memory(reader.read("transposed"), reader.read("embed.weight"))  # still a view


@FORMATS
def test_wrapped_and_nested_state_dicts(tmp_path: Path, legacy: bool) -> None:
    weight = torch.ones(2, 2)
    wrapped = {
        "state_dict": {"layer.weight": weight},
        "epoch": 3,
        "optimizer": {"state": {0: {"exp_avg": weight}}},
    }
    assert [i.name for i in TorchFile(save(wrapped, tmp_path / "a.pt", legacy)).infos()] == ["layer.weight"]
    nested = {"encoder": {"layer": [weight, {"bias": torch.zeros(2)}]}, "name": "x", "step": 7, "lr": 0.1}
    names = [i.name for i in TorchFile(save(nested, tmp_path / "b.pt", legacy)).infos()]
    assert names == ["encoder.layer.0", "encoder.layer.1.bias"]


def test_open_model_and_read_float(tmp_path: Path) -> None:
    state = {"w": torch.randn(3, 4).bfloat16()}
    save(state, tmp_path / "pytorch_model.bin", legacy=False)
    checkpoint = open_model(tmp_path)
    assert checkpoint.format == "torch"
    np.testing.assert_array_equal(checkpoint.read_float("w"), state["w"].float().numpy())


def test_a_whole_module_is_refused_not_run(tmp_path: Path) -> None:
    path = save(torch.nn.Linear(2, 2), tmp_path / "model.pt", legacy=False)
    with pytest.raises(UnsafePickleError, match=r"torch\.nn\.modules\.linear\.Linear"):
        TorchFile(path)


# -- malicious pickles ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "what", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen", "builtins.exec"]
)
def test_malicious_legacy_pickle_is_refused_and_never_runs(tmp_path: Path, what: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.bin"
    path.write_bytes(malicious_payloads(marker)[what])
    with pytest.raises(UnsafePickleError) as caught:
        TorchFile(path)
    message = str(caught.value)
    assert f"{path}: pickle asks for {what}" in message and "nothing was executed" in message
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("what", ["os.system", "posix.system", "builtins.eval", "subprocess.Popen"])
def test_malicious_data_pkl_inside_a_zip_is_refused(tmp_path: Path, what: str) -> None:
    marker = tmp_path / "pwned"
    genuine = save({"w": torch.ones(2)}, tmp_path / "genuine.bin", legacy=False)
    path = tmp_path / "model.bin"
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("/data.pkl"):
                data = malicious_payloads(marker)[what]
            target.writestr(info.filename, data)
    with pytest.raises(UnsafePickleError, match=f"pickle asks for {what}"):
        open_model(path)
    assert not marker.exists()


def test_malicious_global_after_a_genuine_tensor(tmp_path: Path) -> None:
    # The unpickler refuses at the first unknown global even when tensors came before it.
    marker = tmp_path / "pwned"
    genuine = torch.ones(2)
    path = tmp_path / "model.bin"
    torch.save({"w": genuine, "x": Evil(os.system, f"touch {marker}")}, path)
    with pytest.raises(UnsafePickleError, match="posix.system"):
        TorchFile(path)
    assert not marker.exists()


# -- hand-made archives with lying metadata -------------------------------------------------------
class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple:
        return torch._utils._rebuild_tensor_v2, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> tuple | None:
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def craft_zip(path: Path, tensors: dict, storages: dict[str, bytes], compress: bool = False) -> Path:
    """A torch-style zip whose data.pkl says whatever ``tensors`` say about ``storages``."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(tensors)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def test_hand_made_archive_reads(tmp_path: Path) -> None:
    values = np.arange(6, dtype=np.float32)
    storage = _Storage("0", 6)
    tensors = {"a": _Tensor(storage, 0, (2, 3), (3, 1)), "b": _Tensor(storage, 2, (2, 2), (1, 2))}
    for compress in (False, True):  # torch never compresses, but a re-zipped file may be
        reader = TorchFile(
            craft_zip(tmp_path / f"m{compress}.pt", tensors, {"0": values.tobytes()}, compress)
        )
        np.testing.assert_array_equal(reader.read("a"), values.reshape(2, 3))
        np.testing.assert_array_equal(reader.read("b"), [[2, 4], [3, 5]])


@pytest.mark.parametrize(
    ("tensor", "storage_bytes", "problem"),
    [
        (_Tensor(_Storage("0", 4), 0, (2, 3), (3, 1)), 16, "lie outside its 16-byte storage"),
        (_Tensor(_Storage("0", 4), 3, (2,), (1,)), 16, "lie outside its 16-byte storage"),
        (_Tensor(_Storage("0", 4), 0, (2,), (-1,)), 16, "do not fit"),
        (_Tensor(_Storage("0", 4), 0, (2, 2), (2,)), 16, "do not fit"),
        (_Tensor(_Storage("0", 4), 0, (4,), (1,)), 12, "12 bytes stored, 16 declared"),
        (_Tensor(_Storage("0", 4), 0, (4,), (1,)), None, "data/0 is missing"),
    ],
)
def test_lying_tensor_records_are_format_errors(
    tmp_path: Path, tensor: _Tensor, storage_bytes: int | None, problem: str
) -> None:
    storages = {} if storage_bytes is None else {"0": b"\0" * storage_bytes}
    path = craft_zip(tmp_path / "model.pt", {"w": tensor}, storages)
    with pytest.raises(FormatError, match=problem) as caught:
        TorchFile(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@FORMATS
def test_truncated_files_are_one_line_format_errors(tmp_path: Path, legacy: bool) -> None:
    path = save({"w": torch.randn(64, 64)}, tmp_path / "model.bin", legacy)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError) as caught:
            TorchFile(path)
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_not_a_checkpoint_and_unread_dtypes(tmp_path: Path) -> None:
    plain = tmp_path / "numbers.bin"
    plain.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(UnsupportedError, match="not a torch checkpoint"):
        TorchFile(plain)
    complex_path = save({"c": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "complex.pt", legacy=False)
    with pytest.raises(UnsupportedError, match="complex"):
        TorchFile(complex_path)


def test_the_payloads_are_real(tmp_path: Path) -> None:
    # Guard against a vacuous test: plain pickle.loads does run the os.system payload.
    marker = tmp_path / "pwned"
    pickle.loads(malicious_payloads(marker)["os.system"])  # noqa: S301 - the point of the test
    assert marker.exists()
