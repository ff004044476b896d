"""Tamper evidence: ``verify`` passes on the committed weights and names the first tensor that changed."""

import numpy as np
import pytest
from fp_models import PLAN, decoder

from scratchcheck import synthetic
from scratchcheck.fingerprint import fingerprint, sample_positions, verify

NAME = "model.layers.2.mlp.down_proj.weight"


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    root = tmp_path_factory.mktemp("commit")
    weights = decoder(5)
    folder = synthetic.save(weights, root / "model")
    fingerprint(folder, root / "sampled.scfp", plan=PLAN)
    fingerprint(folder, root / "hashed.scfp", plan=PLAN, full_hash=True)
    return weights, root


def _release(weights, root, name, change):
    w = {k: v.copy() for k, v in weights.items()}
    change(w[name])
    return synthetic.save(w, root / f"release-{abs(hash(change))}")


def test_the_committed_weights_verify(committed):
    weights, root = committed
    for fp in ("sampled.scfp", "hashed.scfp"):
        result = verify(root / "model", root / fp)
        assert result.ok and result.tensors_checked == len(weights)


def test_a_changed_sampled_value_names_its_tensor(committed):
    weights, root = committed
    rows, cols = sample_positions(weights[NAME].shape, PLAN)

    def nudge(w):
        w[rows[3], cols[5]] += 1e-3

    result = verify(_release(weights, root, NAME, nudge), root / "sampled.scfp")
    assert not result.ok and result.first_mismatch == f"{NAME}: sampled values differ"


def test_a_change_outside_the_sample_needs_the_full_hash(committed):
    weights, root = committed
    rows, _ = sample_positions(weights[NAME].shape, PLAN)
    unsampled = int(np.setdiff1d(np.arange(weights[NAME].shape[0]), rows)[0])

    def nudge(w):
        w[unsampled, :] *= 1.01

    release = _release(weights, root, NAME, nudge)
    assert verify(release, root / "sampled.scfp").ok  # the sample alone cannot see it
    hashed = verify(release, root / "hashed.scfp")
    assert hashed.first_mismatch == f"{NAME}: stored bytes differ (full hash)"


def test_a_missing_or_reshaped_tensor_is_named(committed):
    weights, root = committed
    w = dict(weights)
    del w["model.norm.weight"]
    assert verify(synthetic.save(w, root / "missing"), root / "sampled.scfp").first_mismatch == (
        "model.norm.weight: missing from the model"
    )
    w = {**weights, NAME: weights[NAME][:, :-1].copy()}
    assert verify(synthetic.save(w, root / "pruned"), root / "sampled.scfp").first_mismatch.startswith(
        f"{NAME}: shape/dtype [256, 511] F32, fingerprint has [256, 512]"
    )


def test_a_change_in_a_unit_feature_column_outside_the_sample_is_seen(committed):
    weights, root = committed
    rows, cols = sample_positions(weights[NAME].shape, PLAN)
    unsampled = int(np.setdiff1d(np.arange(weights[NAME].shape[1]), cols)[0])

    def nudge(w):
        w[rows[0], unsampled] += 1e-3  # a kept row, a column only the unit features keep

    result = verify(_release(weights, root, NAME, nudge), root / "sampled.scfp")
    assert result.first_mismatch == f"{NAME}: unit features differ"
