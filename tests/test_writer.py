import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file

from scratchcheck.io.writer import LazyTensor, write_safetensors


def test_written_file_reads_back_with_the_reference_reader(tmp_path):
    tensors = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16),
        "c": LazyTensor((4,), np.dtype(np.int64), lambda: np.arange(4, dtype=np.int64)),
        "scalar": np.array(3.0, dtype=np.float64),
    }
    path = write_safetensors(tmp_path / "m.safetensors", tensors, metadata={"format": "pt"})
    loaded = load_file(path)
    np.testing.assert_array_equal(loaded["a"], tensors["a"])
    assert loaded["b"].dtype == ml_dtypes.bfloat16 and loaded["b"].tolist() == [1.5, -2.0]
    np.testing.assert_array_equal(loaded["c"], np.arange(4))
    assert loaded["scalar"].shape == ()


def test_failure_leaves_nothing_half_written(tmp_path):
    def boom() -> np.ndarray:
        raise RuntimeError("generator failed")

    target = tmp_path / "m.safetensors"
    with pytest.raises(RuntimeError):
        write_safetensors(target, {"x": LazyTensor((2,), np.dtype(np.float32), boom)})
    assert list(tmp_path.iterdir()) == []
