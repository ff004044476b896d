"""The lineage benchmark runs end to end on a tiny budget (its statistics are in bench/RESULTS.md)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lineage.py"


def test_lineage_bench_smoke(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("lineage", BENCH)
    lineage = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "lineage", lineage)  # dataclasses look their module up
    spec.loader.exec_module(lineage)
    rows = lineage.run(2, steps=10, folder=tmp_path, log=lambda *_: None)
    summary = lineage.summary(rows)
    derived = [r for r in rows if r.truth == "derived"]
    assert len(derived) == 12 and summary["independent_called_derived"] == 0
    assert all(r.verdict in ("derived", "identical") for r in derived), [(r.case, r.verdict) for r in derived]
    assert "| case | truth | verdict |" in lineage.markdown(rows, summary)
