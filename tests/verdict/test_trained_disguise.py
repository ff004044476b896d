"""The residual alignment on actually trained models: two tiny decoders trained independently on one
vocabulary (the lineage bench's trainer and corpus) must stay independent after one of them is
folded and rotated, while the rotated copy of either is found."""

import importlib.util
import sys
from pathlib import Path

import pytest

from scratchcheck import compare
from scratchcheck import synthetic as S

pytest.importorskip("torch")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lineage.py"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("lineage_shared_vocab", BENCH)
    lineage = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = lineage  # dataclasses look their module up
    spec.loader.exec_module(lineage)
    lineage.VOCAB = 192  # more shared tokens than residual dimensions on each half of the split
    data = lineage.corpus(0, 30_000)
    models = []
    for seed in (1, 2):
        net = lineage.build(seed)
        lineage.train(net, 100, data, seed=seed)
        models.append(lineage.weights(net))
    del sys.modules[spec.name]
    return models, S.save(models[0], tmp_path_factory.mktemp("trained") / "a")


@pytest.mark.slow
@pytest.mark.parametrize(("which", "truth"), [(0, "derived"), (1, "independent")])
def test_rotation_through_shared_tokens_finds_copies_and_manufactures_nothing(
    trained, tmp_path, which, truth
):
    models, reference = trained
    disguised = S.rotate_residual(models[which], seed=3)
    report = compare(S.save(disguised, tmp_path / "rotated"), [reference])
    lm = next(c for c in report.components if c.component_kind == "language_model")
    assert lm.verdict == truth, (lm.p_value, [(t.name, t.p_value) for t in lm.tests])
    undone = next(t for t in lm.tests if t.name == "disguise undone")
    if truth == "derived":
        assert lm.kind == "rotated" and undone.detail["residual_r_after_alignment"] > 0.99
