"""Bad input through the real CLI: one line naming the file and the problem, exit 2, no output touched.

Every case builds a valid file with the format's reference writer, damages it, and runs
``python -m scratchcheck`` in a subprocess, exactly as a user would. Besides the message, each failed
``compare`` must leave its ``--json/--html/--markdown`` paths as they were: absent ones still absent,
an existing one byte for byte unchanged.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from safetensors.numpy import save_file

from malicious import Evil, raw_global_call
from scratchcheck.errors import ScratchcheckError

EXIT_BAD_INPUT = 2
KEEP = "an earlier report that a failed run must not touch\n"


def run_cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchcheck", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, names: str, problem: str) -> str:
    """Exit 2 and exactly one stderr line that names ``names`` and matches the ``problem`` regex."""
    assert result.returncode == EXIT_BAD_INPUT, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("scratchcheck: error: "), line
    assert names in line, f"{names!r} not named in: {line}"
    assert re.search(problem, line, re.IGNORECASE), f"{problem!r} not said in: {line}"
    return line


# -- valid files from the reference writers --------------------------------------------------------
WEIGHTS = {
    "embed.weight": np.arange(48, dtype=np.float32).reshape(12, 4) / 7,
    "layer.0.weight": np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4),
}


def safetensors_bytes(header: dict | bytes, data: bytes = b"") -> bytes:
    """A safetensors file with this header (a dict is JSON-encoded) and data buffer."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def write_safetensors(path: Path) -> Path:
    save_file(WEIGHTS, str(path))
    return path


def write_torch(path: Path, legacy: bool = False) -> Path:
    tensors = {name: torch.from_numpy(array.copy()) for name, array in WEIGHTS.items()}
    torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_gguf(path: Path) -> Path:
    writer = gguf.GGUFWriter(path, "gpt2")
    for name, array in WEIGHTS.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_onnx(path: Path) -> Path:
    initializers = [numpy_helper.from_array(array, name) for name, array in WEIGHTS.items()]
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 4])
    node = helper.make_node("Identity", ["layer.0.weight"], ["y"])
    graph = helper.make_graph([node], "g", [], [out], initializer=initializers)
    onnx.save(helper.make_model(graph), str(path))
    return path


def truncate(path: Path, keep: int) -> Path:
    """Cut ``path`` to its first ``keep`` bytes (negative: all but the last ``-keep``)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def _replace(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))


def header_length(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


# -- the damaged inputs ----------------------------------------------------------------------------
# Each builder makes one bad input in a fresh folder and returns (what to pass on the command line,
# what the error line must name). The case then gives a regex for the problem, in a user's words.
Builder = Callable[[Path], tuple[str, str]]


def _missing(tmp: Path) -> tuple[str, str]:
    return str(tmp / "nope.safetensors"), "nope.safetensors"


def _empty_folder(tmp: Path) -> tuple[str, str]:
    (tmp / "empty").mkdir()
    return str(tmp / "empty"), "empty"


def _folder_without_weights(tmp: Path) -> tuple[str, str]:
    folder = tmp / "only-config"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "README.md").write_text("# a model card, no weights\n")
    return str(folder), "only-config"


def _file(name: str, data: bytes) -> Builder:
    def build(tmp: Path) -> tuple[str, str]:
        (tmp / name).write_bytes(data)
        return str(tmp / name), name

    return build


def _damaged(name: str, writer: Callable[[Path], Path], damage: Callable[[Path], object]) -> Builder:
    def build(tmp: Path) -> tuple[str, str]:
        path = writer(tmp / name)
        damage(path)
        return str(path), name

    return build


def _shards(index: str | dict) -> Builder:
    def build(tmp: Path) -> tuple[str, str]:
        folder = tmp / "sharded"
        folder.mkdir()
        write_safetensors(folder / "model-00001-of-00002.safetensors")
        text = index if isinstance(index, str) else json.dumps(index)
        (folder / "model.safetensors.index.json").write_text(text)
        return str(folder), "model"

    return build


def _hub_id(tmp: Path) -> tuple[str, str]:
    return "nobody-here/no-such-model", "nobody-here/no-such-model"


def _marker(tmp: Path) -> Path:
    return tmp / "pwned"


def _legacy_os_system(tmp: Path) -> tuple[str, str]:
    (tmp / "model.bin").write_bytes(raw_global_call("os", "system", f"touch {_marker(tmp)}"))
    return str(tmp / "model.bin"), "model.bin"


def _zip_os_system(tmp: Path) -> tuple[str, str]:
    # torch.save pickles Evil as a call to os.system (posix.system) inside data.pkl of a real archive.
    state = {"w": torch.ones(4), "x": Evil(os.system, f"touch {_marker(tmp)}")}
    torch.save(state, tmp / "pytorch_model.bin")
    return str(tmp / "pytorch_model.bin"), "pytorch_model.bin"


def _object_npz(tmp: Path) -> tuple[str, str]:
    np.savez(tmp / "weights.npz", w=np.ones(3, np.float32), code=np.array([{"a": 1}], dtype=object))
    return str(tmp / "weights.npz"), "weights.npz"


def _truncated_npz(tmp: Path) -> tuple[str, str]:
    np.savez(tmp / "weights.npz", **WEIGHTS)
    truncate(tmp / "weights.npz", -40)
    return str(tmp / "weights.npz"), "weights.npz"


def _gguf_bad_magic(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:4] = b"GGUX"
    path.write_bytes(bytes(data))


def _corrupt_onnx(path: Path) -> None:
    # The first field tag becomes field 1 with wire type 7, which protobuf does not have.
    data = bytearray(path.read_bytes())
    data[0] = 0x0F
    path.write_bytes(bytes(data))


_ONE_F32 = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
TRUNCATED = r"truncated|too short|ends before|past the end"

CASES: dict[str, tuple[Builder, str]] = {
    # paths
    "missing-path": (_missing, r"no such file"),
    "empty-folder": (_empty_folder, r"no checkpoint files found"),
    "folder-without-weights": (_folder_without_weights, r"no checkpoint files found"),
    "unknown-extension-and-magic": (
        _file("weights.xyz", b"just some text, not a checkpoint\n"),
        r"unknown checkpoint format",
    ),
    "hub-id-not-cached": (_hub_id, r"not in the local hugging face cache.*hf download"),
    # safetensors
    "empty-safetensors": (_file("model.safetensors", b""), TRUNCATED),
    "safetensors-cut-in-length": (
        _damaged("model.safetensors", write_safetensors, lambda p: truncate(p, 5)),
        TRUNCATED,
    ),
    "safetensors-cut-in-header": (
        _damaged("model.safetensors", write_safetensors, lambda p: truncate(p, 8 + header_length(p) // 2)),
        TRUNCATED,
    ),
    "safetensors-cut-in-data": (
        _damaged("model.safetensors", write_safetensors, lambda p: truncate(p, -10)),
        TRUNCATED,
    ),
    "safetensors-header-not-json": (
        _file("model.safetensors", safetensors_bytes(b"this is not JSON")),
        r"header is not valid .*JSON",
    ),
    "safetensors-header-json-array": (
        _file("model.safetensors", safetensors_bytes(b"[1, 2, 3]")),
        r"header is not a JSON object",
    ),
    "safetensors-unknown-dtype": (
        _file(
            "model.safetensors",
            safetensors_bytes({"w": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
        ),
        r"tensor 'w'.*unknown dtype 'F33'",
    ),
    "safetensors-offsets-disagree-with-shape": (
        _file(
            "model.safetensors",
            safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}}, bytes(8)),
        ),
        r"tensor 'w'.*800 bytes for shape \[2\] F32, which needs 8",
    ),
    "safetensors-offsets-overlap": (
        _file(
            "model.safetensors",
            safetensors_bytes({**_ONE_F32, "v": _ONE_F32["w"]}, bytes(16)),
        ),
        r"overlaps",
    ),
    "safetensors-header-length-absurd": (
        _file("model.safetensors", b"\xff" * 8 + b"{}"),
        r"header length \d+ exceeds",
    ),
    # shard indexes
    "index-names-missing-shard": (
        _shards(
            {
                "weight_map": {
                    "embed.weight": "model-00001-of-00002.safetensors",
                    "layer.0.weight": "model-00001-of-00002.safetensors",
                    "head.weight": "model-00002-of-00002.safetensors",
                }
            }
        ),
        r"model-00002-of-00002\.safetensors: missing shard",
    ),
    "index-malformed-json": (
        _shards('{"weight_map": {"embed.weight": '),
        r"index\.json: shard index is not valid UTF-8 JSON",
    ),
    # torch
    "bin-random-bytes": (
        _file("pytorch_model.bin", np.random.default_rng(7).bytes(512)),
        r"not a torch checkpoint: neither a zip archive nor a pickle",
    ),
    "torch-zip-truncated": (
        _damaged("pytorch_model.bin", write_torch, lambda p: truncate(p, p.stat().st_size // 2)),
        r"truncated or damaged zip archive",
    ),
    "torch-legacy-truncated": (
        _damaged("model.pt", lambda p: write_torch(p, legacy=True), lambda p: truncate(p, -20)),
        TRUNCATED,
    ),
    "torch-zip-member-name-not-utf8": (
        _damaged("pytorch_model.bin", write_torch, lambda p: _replace(p, b"/byteorder", b"/byteord\xe9r")),
        r"damaged zip archive",
    ),
    "malicious-legacy-pickle": (_legacy_os_system, r"pickle asks for os\.system.*nothing was executed"),
    "malicious-zip-pickle": (_zip_os_system, r"pickle asks for posix\.system.*nothing was executed"),
    # GGUF
    "gguf-cut-in-header": (
        _damaged("model.gguf", write_gguf, lambda p: truncate(p, 40)),
        r"not a valid GGUF file.*(truncated|corrupt)",
    ),
    "gguf-cut-in-data": (_damaged("model.gguf", write_gguf, lambda p: truncate(p, -8)), TRUNCATED),
    "gguf-bogus-magic": (
        _damaged("model.gguf", write_gguf, _gguf_bad_magic),
        r"not a valid GGUF file.*magic",
    ),
    # ONNX
    "onnx-corrupt-protobuf": (
        _damaged("model.onnx", write_onnx, _corrupt_onnx),
        r"not a readable ONNX model",
    ),
    "onnx-truncated": (
        _damaged("model.onnx", write_onnx, lambda p: truncate(p, p.stat().st_size // 2)),
        r"not a readable ONNX model",
    ),
    "onnx-name-not-utf8": (
        _damaged("model.onnx", write_onnx, lambda p: _replace(p, b"embed.weight", b"\xe3mbed.weight")),
        r"tensor name .* is not valid UTF-8",
    ),
    # npz
    "npz-object-array": (_object_npz, r"object array, which needs pickle"),
    "npz-truncated": (_truncated_npz, r"truncated or damaged zip archive"),
}


@pytest.fixture(scope="module")
def good_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    write_safetensors(folder / "model.safetensors")
    (folder / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    return folder


def _hub_env(tmp_path: Path) -> dict[str, str]:
    cache = tmp_path / "hf-cache"
    cache.mkdir(exist_ok=True)
    return {"HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "1"}


@pytest.mark.parametrize("case", list(CASES))
def test_compare_refuses_bad_input_and_leaves_outputs_alone(
    tmp_path: Path, good_model: Path, case: str
) -> None:
    build, problem = CASES[case]
    bad, names = build(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text(KEEP)
    # The bad model is the suspect in half the cases and the reference in the other half.
    models = [bad, good_model] if sorted(CASES).index(case) % 2 else [good_model, bad]
    result = run_cli(
        "compare",
        *models,
        "--json",
        out / "report.json",
        "--html",
        out / "report.html",
        "--markdown",
        out / "report.md",
        env=_hub_env(tmp_path),
    )
    assert_one_line_error(result, names, problem)
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]  # no JSON, no HTML, no temporary file
    assert (out / "report.md").read_text() == KEEP
    assert not _marker(tmp_path).exists()


INSPECT_CASES = [
    "missing-path",
    "empty-folder",
    "unknown-extension-and-magic",
    "hub-id-not-cached",
    "safetensors-cut-in-data",
    "malicious-legacy-pickle",
    "gguf-bogus-magic",
]


@pytest.mark.parametrize("case", INSPECT_CASES)
def test_inspect_refuses_bad_input(tmp_path: Path, case: str) -> None:
    build, problem = CASES[case]
    bad, names = build(tmp_path)
    out = tmp_path / "inspect.json"
    result = run_cli("inspect", bad, "--json", out, env=_hub_env(tmp_path))
    assert_one_line_error(result, names, problem)
    assert not out.exists()
    assert not _marker(tmp_path).exists()


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_unwritable_output_fails_before_anything_is_written(
    tmp_path: Path, good_model: Path, where: str
) -> None:
    # The HTML cannot be written (its folder does not exist / the path is a folder): the run must stop
    # before it writes the JSON, and must not replace the Markdown a previous run left.
    (tmp_path / "report.md").write_text(KEEP)
    if where == "a-folder":
        html, names, problem = tmp_path / "a-folder", "a-folder", r"is a directory"
        html.mkdir()
    else:
        html, names, problem = (
            tmp_path / "no-such-folder" / "report.html",
            "no-such-folder",
            r"no such folder",
        )
    result = run_cli(
        "compare",
        good_model,
        good_model,
        "--json",
        tmp_path / "report.json",
        "--html",
        html,
        "--markdown",
        tmp_path / "report.md",
    )
    assert_one_line_error(result, names, problem)
    assert (tmp_path / "report.md").read_text() == KEEP
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["report.md", *[html.name] * (html.is_dir())])


def test_a_writer_failing_half_way_leaves_no_report_and_replaces_none(
    tmp_path: Path, good_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process, to make the last writer fail after the others have succeeded: all reports or none.
    import scratchcheck
    import scratchcheck.report.markdown
    from scratchcheck.cli.compare_cmd import write_reports

    def broken(report: object, path: object) -> None:
        Path(path).write_text("half a report")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scratchcheck.report.markdown, "write_markdown", broken)
    report = scratchcheck.compare(good_model, [good_model])
    (tmp_path / "report.json").write_text(KEEP)
    with pytest.raises(ScratchcheckError, match=r"report\.md: cannot write .*No space"):
        write_reports(
            report,
            json_path=tmp_path / "report.json",
            html_path=tmp_path / "report.html",
            markdown_path=tmp_path / "report.md",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert (tmp_path / "report.json").read_text() == KEEP


# -- input that is odd but not fatal -----------------------------------------------------------------
@pytest.fixture
def broken_config_model(tmp_path: Path) -> Path:
    folder = tmp_path / "broken-config"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors")
    (folder / "config.json").write_text('{"model_type": "bert", "hidden_size": ')
    return folder


def _mentions(node: object, *words: str) -> bool:
    text = json.dumps(node).lower()
    return all(word.lower() in text for word in words)


def test_malformed_config_is_a_finding_not_an_abort_in_compare(
    tmp_path: Path, good_model: Path, broken_config_model: Path
) -> None:
    out = tmp_path / "report.json"
    result = run_cli("compare", broken_config_model, good_model, "--json", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(out.read_text())
    assert report["verdict"] == "identical"  # the weights were still compared
    assert _mentions(report["metadata"], "config.json", "json"), report["metadata"]


def test_malformed_config_is_a_finding_not_an_abort_in_inspect(
    tmp_path: Path, broken_config_model: Path
) -> None:
    out = tmp_path / "inspect.json"
    result = run_cli("inspect", broken_config_model, "--json", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(out.read_text())
    assert data["params"] == sum(a.size for a in WEIGHTS.values())
    assert _mentions(data["metadata"], "config.json", "json"), data["metadata"]
    assert "config.json" in result.stdout


@pytest.mark.parametrize("dtype", [np.bool_, np.int64])
def test_a_non_float_tensor_paired_with_a_float_one_is_set_aside_with_a_reason(
    tmp_path: Path, good_model: Path, dtype: type
) -> None:
    # Same names and shapes as the good model, but one tensor is stored as bool / int64 (a mask or an
    # index table where the reference has a weight). The comparison runs to the end; the tensor is
    # not compared as a learned weight (a 0/1 cast would correlate with anything of the same signs)
    # but set aside or listed as not comparable, with the reason in the report.
    odd = dict(WEIGHTS, **{"layer.0.weight": (WEIGHTS["layer.0.weight"] > 0).astype(dtype)})
    (tmp_path / "odd").mkdir()
    save_file(odd, str(tmp_path / "odd" / "model.safetensors"))
    out = tmp_path / "report.json"
    result = run_cli("compare", tmp_path / "odd", good_model, "--json", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(out.read_text())
    assert "layer.0.weight" not in {t["suspect"] for t in report["tensors"] if t["learned"]}
    coverage = report["coverage"][0]
    reasons = dict(coverage["excluded"])
    reasons.update({json.dumps(nc): json.dumps(nc) for nc in coverage["not_comparable"]})
    said = [why for name, why in reasons.items() if "layer.0.weight" in name]
    assert said and all(said), coverage
    # What could be compared (embed.weight) still is identical, but the model is not headlined so.
    assert [c["verdict"] for c in report["components"] if c["tensors_compared"]] == ["identical"]
    assert report["verdict"] == "derived" and "identical" in report["headline"]
