"""Tensor names that are legal in a file but not encodable as UTF-8 (lone surrogates, from a JSON
header's ``\\udc80`` escape) reach every report without crashing the writer or the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from scratchcheck.io.writer import write_safetensors


def model(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    weights = {
        "model.embed_tokens.weight": rng.standard_normal((32, 16)).astype(np.float32),
        "odd\udc80name.weight": rng.standard_normal((16, 16)).astype(np.float32),
    }
    write_safetensors(folder / "model.safetensors", weights)
    return folder


def test_lone_surrogate_names_reach_every_report(tmp_path: Path) -> None:
    a, b = model(tmp_path / "a"), model(tmp_path / "b")
    outputs = {flag: tmp_path / f"report.{flag}" for flag in ("json", "html", "markdown")}
    flags = [arg for flag, path in outputs.items() for arg in (f"--{flag}", str(path))]
    result = subprocess.run(
        [sys.executable, "-m", "scratchcheck", "compare", str(a), str(b), *flags],
        capture_output=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    report = json.loads(outputs["json"].read_text(encoding="utf-8"))
    assert "odd\udc80name.weight" in json.dumps(report, ensure_ascii=False)
    assert "odd\\udc80name" in outputs["markdown"].read_text(encoding="utf-8")
