"""The disputes in miniature, end to end through ``compare``: Solar/GLM, HCX/Qwen, a permuted copy."""

import numpy as np
import pytest

from scratchcheck import compare, synthetic


def _by_kind(report, kind):
    return next(c for c in report.components if c.component_kind == kind)


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    w = synthetic.llama_decoder(
        1,
        layers=4,
        hidden=256,
        heads=8,
        kv_heads=2,
        intermediate=512,
        vocab=512,
        experts=4,
        expert_intermediate=64,
    )
    return w, synthetic.save(w, tmp_path_factory.mktemp("glm"))


def test_solar_vs_glm_norm_gains_look_similar_raw_but_are_independent(glm, tmp_path):
    # Solar: same hidden size, so only the norm gains line up; heads, experts and the vocabulary
    # differ, so q/o, k/v, experts, router, embeddings and head have other shapes. Its gains sit
    # around 0.3, GLM's around 1.0: positive means, different per model, as in the real case.
    solar = synthetic.llama_decoder(
        2,
        layers=4,
        hidden=256,
        heads=8,
        kv_heads=4,
        intermediate=512,
        vocab=640,
        experts=8,
        expert_intermediate=48,
        norm_mean=0.3,
    )
    rng = np.random.default_rng(0)
    for i in range(4):
        solar[f"model.layers.{i}.self_attn.q_proj.weight"] = (rng.standard_normal((384, 256)) / 16).astype(
            np.float32
        )
        solar[f"model.layers.{i}.self_attn.o_proj.weight"] = (rng.standard_normal((256, 384)) / 16).astype(
            np.float32
        )
    report = compare(synthetic.save(solar, tmp_path / "solar"), [glm[1]])

    norms = [t for t in report.tensors if t.learned and t.role.startswith("norm")]
    assert norms and all(t.cosine > 0.9 for t in norms)  # the "96.8% similar" of the dispute
    assert all(t.raw_cosine_uninformative for t in norms)
    lm = _by_kind(report, "language_model")
    assert lm.verdict == "independent" and report.verdict == "independent"
    assert lm.coverage < 0.01 and lm.power is not None and lm.power < 0.5
    assert lm.not_comparable  # q/o, k/v, experts and router are listed as not comparable
    assert any("raw cosine" in w for w in report.warnings)
    assert any("only 0.1" in w and "compared" in w for w in report.warnings)  # how little was comparable
    # The vocabularies (640 and 512 rows, no tokenizers, no common rows) pair by position: independent.
    assert {c.verdict for c in report.components} == {"independent"}


def test_a_known_fine_tune_of_glm_is_derived_on_the_same_tensors(glm, tmp_path):
    # The INTELLECT-3 control: a fine-tune of GLM scores Pearson ~1 on the very norm gains.
    report = compare(synthetic.save(synthetic.fine_tune(glm[0], 0.3, seed=5), tmp_path / "i3"), [glm[1]])
    lm = _by_kind(report, "language_model")
    assert lm.verdict == "derived" and lm.p_value < 1e-12
    assert not any("raw cosine" in w for w in report.warnings)


def test_hcx_vs_qwen_vision_derived_language_model_not(tmp_path):
    vision = synthetic.qwen25_vl_vision(0)
    qwen = {
        **vision,
        **synthetic.llama_decoder(10, hidden=96, heads=4, kv_heads=2, intermediate=192, vocab=300),
    }
    hcx = {
        **synthetic.rename_prefix(synthetic.fine_tune(vision, 0.1, seed=3), "visual.", "model.vision_model."),
        **synthetic.projector(3, inp=96, out=128),
        **synthetic.llama_decoder(
            11,
            prefix="model.language_model.model.",
            hidden=128,
            heads=4,
            kv_heads=2,
            intermediate=256,
            vocab=400,
        ),
    }
    ref = synthetic.save(qwen, tmp_path / "qwen", {"model_type": "qwen2_5_vl"})
    report = compare(synthetic.save(hcx, tmp_path / "hcx"), [ref])

    vis = _by_kind(report, "vision")
    assert vis.verdict == "derived" and vis.p_value < 1e-12 and vis.coverage == pytest.approx(1.0)
    assert _by_kind(report, "language_model").verdict in ("independent", "not_comparable")
    total = sum(w.size for w in hcx.values())
    vision_params = sum(w.size for n, w in hcx.items() if n.startswith("model.vision_model."))
    assert vis.params == vision_params and vis.share == pytest.approx(vision_params / total)
    shares = report.shares[str(ref)]
    assert shares["derived"] == pytest.approx(vision_params / total)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert report.verdict == "derived"


def test_a_copy_with_units_and_heads_permuted_is_derived_kind_permuted(tmp_path):
    base = synthetic.llama_decoder(0, layers=4, hidden=64, heads=4, kv_heads=2, intermediate=128)
    ref = synthetic.save(base, tmp_path / "base", synthetic.llama_config())
    child = synthetic.permute_units(base, 7)
    report = compare(synthetic.save(child, tmp_path / "child", synthetic.llama_config()), [ref])
    lm = _by_kind(report, "language_model")
    assert lm.verdict == "derived" and lm.kind == "permuted" and lm.p_value < 1e-6
    mlp = next(t for t in lm.tests if t.name == "unit-matching-similarity (mlp units)")
    assert mlp.p_value < 1e-12 and mlp.statistic > 0.99


def test_unit_matching_is_skipped_and_said_so_where_coordinates_decide(tmp_path):
    base = synthetic.llama_decoder(0, layers=4, hidden=64, heads=4, kv_heads=2, intermediate=128)
    ref = synthetic.save(base, tmp_path / "base", synthetic.llama_config())
    child = synthetic.fine_tune(base, 0.3, seed=1)
    report = compare(synthetic.save(child, tmp_path / "child", synthetic.llama_config()), [ref])
    lm = _by_kind(report, "language_model")
    assert lm.verdict == "derived" and lm.kind != "permuted"
    skipped = next(t for t in lm.tests if t.name == "unit-matching (skipped)")
    assert "could not change the verdict" in skipped.null and skipped.statistic < -12
    assert not any(t.name.startswith("unit-matching-") for t in lm.tests)
