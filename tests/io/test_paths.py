"""The containment rule: links that stay in the model folder or its Hugging Face cache repo are read,
links that leave it are refused with one line naming the file, for every kind of file a model has."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save_file

from scratchcheck.errors import FormatError, ScratchcheckError
from scratchcheck.io.onnx import OnnxFile
from scratchcheck.io.resolve import open_model

WEIGHTS = np.arange(12, dtype=np.float32).reshape(3, 4)
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def as_hf_snapshot(files: Path, cache: Path) -> Path:
    """``files`` laid out as `hf download` does: blobs/ holds the bytes, snapshots/<commit>/ links."""
    repo = cache / "models--org--name"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for index, path in enumerate(sorted(files.iterdir())):
        blob = repo / "blobs" / f"{index:040x}"
        path.rename(blob)
        (snapshot / path.name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot


def safetensors_model(folder: Path) -> Path:
    folder.mkdir()
    save_file({"w": WEIGHTS}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return folder


def onnx_model(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    model = helper.make_model(graph)
    onnx.save(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    return folder


def test_hf_cache_snapshot_of_safetensors_reads(tmp_path: Path) -> None:
    snapshot = as_hf_snapshot(safetensors_model(tmp_path / "m"), tmp_path / "hub")
    checkpoint = open_model(snapshot)
    np.testing.assert_array_equal(checkpoint.read("w"), WEIGHTS)
    assert checkpoint.config() == {"model_type": "bert"}


def test_hf_cache_snapshot_of_onnx_with_external_data_reads(tmp_path: Path) -> None:
    snapshot = as_hf_snapshot(onnx_model(tmp_path / "m"), tmp_path / "hub")
    assert (snapshot / "model.onnx_data").is_symlink()
    np.testing.assert_array_equal(open_model(snapshot).read("w"), WEIGHTS)


def test_links_inside_a_plain_folder_are_followed(tmp_path: Path) -> None:
    folder = safetensors_model(tmp_path / "m")
    (folder / "real").mkdir()
    (folder / "model.safetensors").rename(folder / "real" / "weights.safetensors")
    (folder / "model.safetensors").symlink_to("real/weights.safetensors")
    np.testing.assert_array_equal(open_model(folder).read("w"), WEIGHTS)


def escape(link: Path, target: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(target)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json"])
def test_a_link_out_of_a_snapshot_is_refused(tmp_path: Path, name: str) -> None:
    snapshot = as_hf_snapshot(safetensors_model(tmp_path / "m"), tmp_path / "hub")
    secret = tmp_path / "secret.json"
    save_file({"w": WEIGHTS}, str(secret)) if name.endswith(".safetensors") else secret.write_text("{}")
    escape(snapshot / name, secret)
    with pytest.raises(FormatError, match="outside the model folder") as caught:
        open_model(snapshot)
    assert str(snapshot / name) in str(caught.value) and "\n" not in str(caught.value)


def test_a_shard_linked_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    outside = tmp_path / "elsewhere.safetensors"
    save_file({"w": WEIGHTS}, str(outside))
    (folder / "model-00001-of-00001.safetensors").symlink_to(outside)
    index = {"weight_map": {"w": "model-00001-of-00001.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(FormatError, match="outside the model folder"):
        open_model(folder)


def test_onnx_external_data_linked_out_is_refused(tmp_path: Path) -> None:
    folder = onnx_model(tmp_path / "m")
    (folder / "model.onnx_data").rename(tmp_path / "data")
    (folder / "model.onnx_data").symlink_to(tmp_path / "data")
    with pytest.raises(FormatError, match="outside the model folder"):
        OnnxFile(folder / "model.onnx").read("w")


@pytest.mark.parametrize("location", ["loop", "nul\0byte", ""])
def test_odd_external_data_locations_are_one_line_errors(tmp_path: Path, location: str) -> None:
    folder = onnx_model(tmp_path / "m")
    os.symlink("loop", folder / "loop")
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    (entry,) = [e for e in model.graph.initializer[0].external_data if e.key == "location"]
    if location:
        entry.value = location
    else:
        model.graph.initializer[0].external_data.remove(entry)
    onnx.save(model, str(folder / "model.onnx"))
    reader = OnnxFile(folder / "model.onnx")
    with pytest.raises(ScratchcheckError) as caught:
        reader.read("w")
    assert str(folder / "model.onnx") in str(caught.value) or "loop" in str(caught.value)
    assert "\n" not in str(caught.value)
