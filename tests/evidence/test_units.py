"""symmetry: permuted units are found, the identity is recognised, and unrelated weights are not matched."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from scratchcheck import synthetic
from scratchcheck.evidence import units


def _layer(weights: dict, i: int = 0) -> dict:
    p = f"model.layers.{i}."
    return {
        "mlp.gate.weight": weights[p + "mlp.gate_proj.weight"],
        "mlp.up.weight": weights[p + "mlp.up_proj.weight"],
        "mlp.down.weight": weights[p + "mlp.down_proj.weight"],
    }


def _heads(weights: dict, i: int = 0) -> dict:
    p = f"model.layers.{i}.self_attn."
    return {f"attn.{r}.weight": weights[f"{p}{r}_proj.weight"] for r in "qkvo"}


@pytest.fixture(scope="module")
def base():
    return synthetic.llama_decoder(0, hidden=64, heads=8, kv_heads=4, intermediate=128)


def test_permuted_units_are_found_and_the_matching_is_not_the_identity(base):
    child = synthetic.fine_tune(synthetic.permute_units(base, 3, heads=8, kv_heads=4), 0.3, seed=4)
    m = units.match(_layer(child), _layer(base), units.mlp_features, group="mlp units")
    assert m.similarity.log_p < math.log(1e-12)
    assert m.matched_similarity > 0.9 > 0.5 > m.null_similarity
    assert m.identity_fraction < 0.05 and m.identity.log_p > math.log(1e-3)
    heads = units.match(_heads(child), _heads(base), units.head_features(8, 8), group="attention heads")
    assert heads.similarity.log_p < math.log(1e-6) and heads.identity_fraction < 1.0


def test_an_unpermuted_fine_tune_matches_itself(base):
    child = synthetic.fine_tune(base, 0.5, seed=5)
    m = units.match(_layer(child), _layer(base), units.mlp_features, group="mlp units")
    assert m.identity_fraction == 1.0
    assert m.identity.log_p == pytest.approx(-math.lgamma(129))  # exactly 1/128!


def test_heads_survive_a_rotation_inside_each_head(base):
    # v and o may be rotated inside a head (v rows by R, o columns by R) without changing the
    # function; the OV circuit the features read is unchanged by it.
    w = _heads(base)
    rng = np.random.default_rng(6)
    v, o = w["attn.v.weight"].copy(), w["attn.o.weight"].copy()
    for g in range(4):
        rot, _ = np.linalg.qr(rng.standard_normal((8, 8)))
        v[g * 8 : (g + 1) * 8] = rot @ v[g * 8 : (g + 1) * 8]
        for h in (2 * g, 2 * g + 1):
            o[:, h * 8 : (h + 1) * 8] = o[:, h * 8 : (h + 1) * 8] @ rot.T
    rotated = {**w, "attn.v.weight": v, "attn.o.weight": o}
    m = units.match(rotated, w, units.head_features(8, 8), group="attention heads")
    assert m.identity_fraction == 1.0 and m.matched_similarity > 0.999


def test_unrelated_layers_are_not_matched_beyond_chance():
    ps = []
    for seed in range(40):
        a = synthetic.llama_decoder(100 + seed, layers=1, hidden=32, intermediate=48)
        b = synthetic.llama_decoder(200 + seed, layers=1, hidden=32, intermediate=48)
        m = units.match(_layer(a), _layer(b), units.mlp_features, group="mlp units", seed=seed)
        assert m.matched_similarity > 0.1  # matching always finds something ...
        ps.append(math.exp(m.similarity.log_p))
    assert min(ps) > 1e-4  # ... but never more than its null does
    assert sps.kstest(ps, "uniform").pvalue > 0.01


def test_experts_are_matched_as_wholes():
    w = synthetic.llama_decoder(1, layers=1, hidden=32, experts=6, expert_intermediate=16)
    p = "model.layers.0.mlp."

    def arrays(order):
        out = {"router.weight": w[p + "gate.weight"][order]}
        for new, old in enumerate(order):
            for m in ("gate", "up", "down"):
                out[f"expert.{m}.weight.{new}"] = w[f"{p}experts.{old}.{m}_proj.weight"]
        return out

    order = np.array([3, 0, 5, 1, 2, 4])  # no expert keeps its place
    m = units.match(arrays(order), arrays(np.arange(6)), units.expert_features(6), group="experts")
    assert m.matched_similarity > 0.999 and m.identity_fraction == 0.0
    assert m.similarity.log_p < math.log(1e-6)


def test_large_groups_are_matched_on_a_subset_and_say_so(base, monkeypatch):
    monkeypatch.setattr(units, "MAX_UNITS", 40)
    child = synthetic.permute_units(base, 8, heads=8, kv_heads=4)
    m = units.match(_layer(child), _layer(base), units.mlp_features, group="mlp units")
    assert (m.units, m.total, m.reference_units) == (40, 128, 128)
    assert m.matched_similarity > 0.999 and m.similarity.log_p < math.log(1e-6)


def test_features_are_the_permuted_weights_up_to_the_projection_width(base):
    """Below PROJECTED the features are exactly gate[:, p], up[:, p], down[p].T; one pass per draw."""
    layer = _layer(base)
    perm = np.random.default_rng(2).permutation(64)
    got = list(units.mlp_features(layer, [None, perm]))
    for features, p in zip(got, [np.arange(64), perm], strict=True):
        expected = np.concatenate(
            [layer["mlp.gate.weight"][:, p], layer["mlp.up.weight"][:, p], layer["mlp.down.weight"][p].T],
            axis=1,
        )
        np.testing.assert_array_equal(features, expected)


def test_wide_residual_streams_are_matched_through_a_projection(base, monkeypatch):
    """Above PROJECTED (here 16 of 64 dimensions) permuted units are still found, and unrelated
    layers still match no better than their null."""
    monkeypatch.setattr(units, "PROJECTED", 16)
    child = synthetic.fine_tune(synthetic.permute_units(base, 3, heads=8, kv_heads=4), 0.3, seed=4)
    assert next(units.mlp_features(_layer(child), [None])).shape == (128, 3 * 16)
    m = units.match(_layer(child), _layer(base), units.mlp_features, group="mlp units")
    assert m.similarity.log_p < math.log(1e-12) and m.matched_similarity > 0.8
    ps = []
    for seed in range(30):
        a = synthetic.llama_decoder(300 + seed, layers=1, hidden=64, intermediate=48)
        b = synthetic.llama_decoder(400 + seed, layers=1, hidden=64, intermediate=48)
        ps.append(
            math.exp(
                units.match(
                    _layer(a), _layer(b), units.mlp_features, group="mlp units", seed=seed
                ).similarity.log_p
            )
        )
    assert min(ps) > 1e-4 and sps.kstest(ps, "uniform").pvalue > 0.01


def test_experts_are_read_through_views_one_at_a_time():
    """Experts arrive as views; each is loaded once for the observed matching and every null draw."""
    w = synthetic.llama_decoder(1, layers=1, hidden=32, experts=6, expert_intermediate=16)
    p = "model.layers.0.mlp."
    loads = []

    class View:
        def __init__(self, name):
            self.name, self.shape = name, w[name].shape

        def load(self):
            loads.append(self.name)
            return w[self.name]

    arrays = {"router.weight": View(p + "gate.weight")}
    for e in range(6):
        for m in ("gate", "up", "down"):
            arrays[f"expert.{m}.weight.{e}"] = View(f"{p}experts.{e}.{m}_proj.weight")
    m = units.match(arrays, arrays, units.expert_features(6), group="experts")
    assert m.identity_fraction == 1.0 and m.similarity.log_p < math.log(1e-6)
    assert len(loads) == 2 * len(arrays)  # suspect once, reference once (all draws from that read)


def test_nan_and_inf_weights_are_matched_as_zeros_and_counted(base):
    suspect = _layer(base)
    suspect = {k: v.copy() for k, v in suspect.items()}
    suspect["mlp.up.weight"][3, 5] = np.nan
    suspect["mlp.down.weight"][7, 2] = np.inf
    m = units.match(suspect, _layer(base), units.mlp_features, group="mlp units")
    assert m.non_finite > 0 and m.identity_fraction > 0.9
    assert np.isfinite(m.matched_similarity) and np.isfinite(m.null_similarity)


def test_mlp_tensors_that_do_not_chain_are_not_matched():
    class Pair:
        def __init__(self, role, shape):
            self.role, self.layer = role, 0
            self.suspect = self.reference = np.ones(shape, np.float32)

    entries = [
        ("mlp.gate.weight", Pair("mlp.gate.weight", (8, 16))),
        ("mlp.up.weight", Pair("mlp.up.weight", (8, 12))),  # another residual width than gate
        ("mlp.down.weight", Pair("mlp.down.weight", (16, 8))),
    ]
    assert units._match_layer(0, entries, suspect=None, seed=0) == []


def _residual_permuted(arrays: dict, perm: np.ndarray) -> dict:
    """The same layer with its residual basis permuted: inputs of q/k/v/gate/up, outputs of o/down."""
    out = {}
    for role, w in arrays.items():
        out[role] = w[perm] if role in ("attn.o.weight", "mlp.down.weight") else w[:, perm]
    return out


@pytest.mark.parametrize("projected", [None, 16])
def test_a_null_draw_is_the_layer_with_its_residual_basis_permuted(base, monkeypatch, projected):
    """Draws share one read (MLP) or one product per unit (heads), yet each equals featurizing the
    explicitly permuted layer: the null is what its docstring says, whatever the shortcut."""
    if projected:
        monkeypatch.setattr(units, "PROJECTED", projected)  # 64 residual dimensions projected to 16
    perm = np.random.default_rng(7).permutation(64)
    for arrays, featurize in ((_layer(base), units.mlp_features), (_heads(base), units.head_features(8, 8))):
        _, drawn = featurize(arrays, [None, perm])
        (direct,) = featurize(_residual_permuted(arrays, perm), [None])
        np.testing.assert_allclose(drawn, direct, rtol=1e-4, atol=1e-5)


def test_one_read_of_an_mlp_serves_every_null_draw(base):
    layer = _layer(base)
    loads = []

    class View:
        def __init__(self, role):
            self.role, self.shape = role, layer[role].shape

        def load(self):
            loads.append(self.role)
            return layer[self.role]

    perms = [None] + [np.random.default_rng(i).permutation(64) for i in range(16)]
    assert len(list(units.mlp_features({r: View(r) for r in layer}, perms))) == 17
    assert sorted(loads) == sorted(layer)


def test_matching_is_skipped_only_where_coordinates_already_decide_every_matched_matrix():
    strong = [
        ("attn.q.weight", 0, "model.layers.0.self_attn.q_proj.weight", -200.0),
        ("mlp.up.weight", 0, "model.layers.0.mlp.up_proj.weight", -80.0),
        ("norm.attn.weight", 0, "model.layers.0.input_layernorm.weight", -1.0),  # not matched: no say
    ]
    reason, weakest = units.coordinates_decide(strong)
    assert "skipped" in reason and "1 layer(s) (2 matrices)" in reason and weakest == -80.0
    # One permuted-looking matrix (no coordinate signal) and matching is needed again.
    weak = [*strong, ("mlp.down.weight", 1, "model.layers.1.mlp.down_proj.weight", -0.3)]
    assert units.coordinates_decide(weak) is None
    # Raw Hugging Face names count too (roles not yet canonical).
    raw = [("other", None, "model.layers.3.mlp.gate_proj.weight", -2.0)]
    assert units.coordinates_decide(raw) is None
    assert units.coordinates_decide([]) is None
