"""The size of a fingerprint, from the plan and the shapes alone: a 7B dense model within 16 MB and a
100B MoE within 64 MB, unit features included.

    size = sum over tensors of kept elements x itemsize          (the samples)
         + sum over chosen down/o projections of rows x columns x itemsize   (unit features)
         + header (at most HEADER_RECORD bytes of JSON per tensor) + metadata files
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from scratchcheck.arch import layout
from scratchcheck.fingerprint import DEFAULT_PLAN, sample_positions
from scratchcheck.fingerprint.unitfeatures import FEATURE_ROWS, chosen, feature_rows
from scratchcheck.io.base import Checkpoint, TensorFile, TensorInfo

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str):
    """A bench module (the shapes the fingerprint benchmark builds), under a name no test shadows."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))  # bench modules import each other by name
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


MB = 1_000_000
HEADER_RECORD = 700  # bytes of JSON per tensor record (a miniature's records are 520-660)
METADATA = 4 * MB  # config, tokenizer (zlib-compressed), licence


class _Shapes(TensorFile):
    """bf16 tensors known by their shapes only: nothing is read to lay the model out."""

    format = "safetensors"

    def __init__(self, path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
        self.path = path
        self.shapes = shapes

    def infos(self) -> list[TensorInfo]:
        return [TensorInfo(n, s, "BF16", 2 * math.prod(s), self.path) for n, s in self.shapes.items()]

    def read(self, name: str) -> np.ndarray:
        raise AssertionError(f"{name} was read")


def _size(shapes: dict[str, tuple[int, ...]], config: dict, folder: Path) -> tuple[int, int, dict[str, int]]:
    """(samples + header + metadata bytes, unit feature bytes, the tensors that keep features)."""
    (folder / "config.json").write_text(json.dumps(config))
    checkpoint = Checkpoint(
        folder / "model.safetensors",
        "safetensors",
        [_Shapes(folder / "model.safetensors", shapes)],
        {"config.json": folder / "config.json"},
    )
    featured = chosen(layout(checkpoint), DEFAULT_PLAN)
    samples = sum(
        2 * (math.prod(s) if (p := sample_positions(s)) is None else math.prod(a.size for a in p))
        for s in shapes.values()
    )
    features = sum(2 * feature_rows(shapes[n], DEFAULT_PLAN).size * shapes[n][1] for n in featured)
    return samples + HEADER_RECORD * len(shapes) + METADATA, features, featured


def test_a_7b_dense_fingerprint_stays_within_16_mb(tmp_path):
    shapes, config = _bench("memory").llama_shapes(12.6)
    assert config["num_hidden_layers"] == 32
    rest, features, featured = _size(shapes, config, tmp_path)
    # 8 of 32 layers, down [4096, 11008] and o [4096, 4096], every kept row (27 of 4096), bf16.
    assert len(featured) == 16
    assert features == 8 * 27 * (11008 + 4096) * 2
    assert rest + features <= 16 * MB


def test_a_100b_moe_fingerprint_stays_within_64_mb_without_routed_expert_features(tmp_path):
    shapes, config = _bench("fingerprint").glm_air_shapes()
    rest, features, featured = _size(shapes, config, tmp_path)
    assert not any(".experts." in name or "shared_experts" in name for name in featured)
    assert features <= 7 * MB
    assert rest + features <= 64 * MB
    # Features of every routed expert in the same 8 layers would not fit.
    routed = 8 * 128 * feature_rows((4096, 1408), DEFAULT_PLAN).size * 1408 * 2
    assert rest + features + routed > 64 * MB


@pytest.mark.parametrize("shape", [(4096, 11008), (7168, 18432), (576, 1536)])
def test_feature_rows_are_the_first_kept_rows_and_no_more_than_32(shape):
    rows = feature_rows(shape, DEFAULT_PLAN)
    kept = sample_positions(shape)[0]
    assert rows.size == min(FEATURE_ROWS, kept.size) and np.array_equal(rows, kept[:FEATURE_ROWS])


def test_a_matrix_kept_whole_or_with_every_column_keeps_no_features():
    assert feature_rows((64, 64), DEFAULT_PLAN) is None  # stored whole
    assert feature_rows((4096, 256), DEFAULT_PLAN) is None  # every column (unit) is kept anyway
