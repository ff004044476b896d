import numpy as np

from scratchcheck import synthetic as S


def _layer_output(w: dict, x: np.ndarray, heads: int = 4, kv_heads: int = 2) -> np.ndarray:
    """One decoder layer's attention-value path and SwiGLU MLP on a single token (no softmax needed)."""
    p = "model.layers.0."
    q, v, o = (w[p + f"self_attn.{n}_proj.weight"] for n in "qvo")
    head_dim = q.shape[0] // heads
    attn = 0
    for h in range(heads):
        g = h // (heads // kv_heads)
        score = float((q[h * head_dim : (h + 1) * head_dim] @ x).sum())
        attn = (
            attn
            + o[:, h * head_dim : (h + 1) * head_dim] @ (v[g * head_dim : (g + 1) * head_dim] @ x) * score
        )
    gate, up, down = (w[p + f"mlp.{n}_proj.weight"] for n in ("gate", "up", "down"))
    return attn + down @ ((gate @ x) * (up @ x))


def test_permuted_copy_computes_the_same_function_with_different_weights():
    w = S.llama_decoder(0)
    p = S.permute_units(w, seed=3)
    x = np.random.default_rng(1).standard_normal(64).astype(np.float32)
    np.testing.assert_allclose(_layer_output(w, x), _layer_output(p, x), rtol=1e-4, atol=1e-4)
    assert not np.array_equal(w["model.layers.0.mlp.up_proj.weight"], p["model.layers.0.mlp.up_proj.weight"])


def test_drop_layers_keeps_every_kth_and_renumbers():
    w = S.llama_decoder(0, layers=6)
    d = S.drop_layers(w, keep_every=2)
    np.testing.assert_array_equal(
        d["model.layers.1.mlp.up_proj.weight"], w["model.layers.2.mlp.up_proj.weight"]
    )
    assert "model.layers.3.mlp.up_proj.weight" not in d


def test_fine_tune_strength_sets_the_relative_change():
    w = S.llama_decoder(0)
    name = "model.layers.1.mlp.up_proj.weight"
    for strength in (0.05, 0.5):
        delta = S.fine_tune(w, strength=strength)[name] - w[name]
        assert 0.5 * strength < np.std(delta) / np.std(w[name]) < 2 * strength


def test_mtp_block_and_moe_shapes():
    w = S.llama_decoder(0, layers=2, experts=4, expert_intermediate=32, mtp_layer=True)
    assert w["model.layers.1.mlp.experts.3.up_proj.weight"].shape == (32, 64)
    assert w["model.layers.0.mlp.gate.weight"].shape == (4, 64)
    assert "model.layers.2.eh_proj.weight" in w  # the MTP block saved as layer N


def test_save_writes_a_model_folder(tmp_path):
    from scratchcheck import open_model

    folder = S.save(S.qwen25_vl_vision(0, depth=2), tmp_path / "m", {"model_type": "qwen2_5_vl"})
    with open_model(folder) as model:
        assert model.config() == {"model_type": "qwen2_5_vl"}
        assert model.info("visual.patch_embed.proj.weight").shape == (64, 3, 2, 14, 14)
