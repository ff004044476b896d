"""HyperCLOVA X-style VLM vs a Qwen2.5-VL-style tower: the vision tower pairs across prefixes and
layouts, the language model pairs with nothing, and among sibling towers the true one wins."""

from scratchcheck import synthetic as S
from scratchcheck.align import align
from scratchcheck.compare import compare


def _vlm(build, save, tower):
    config = {
        "model_type": "hyperclovax_vlm",
        "vision_config": build.vision_config,
        "text_config": {
            "model_type": "llama",
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "num_hidden_layers": 2,
        },
    }
    return save("hcx", build.hcx_vlm(S.fine_tune(tower, 0.05, seed=9), seed=5), config)


def test_every_vision_tensor_pairs_and_the_language_model_pairs_with_nothing(build, save, opened):
    tower = S.qwen25_vl_vision(1, **build.vision)
    reference = opened(
        save("qwen", tower, {"model_type": "qwen2_5_vl", "vision_config": build.vision_config})
    )
    suspect = opened(_vlm(build, save, tower))
    kinds = {c.name: c.kind for c in suspect.components}
    assert kinds == {
        "vision": "vision",
        "projector": "projector",
        "embeddings": "embeddings",
        "language_model": "language_model",
        "head": "head",
    }
    result = align(suspect, reference)
    assert ("vision", "vision") in result.component_pairs
    vision = [p for p in result.pairs if p.suspect_component == "vision"]
    paired = {p.suspect.name for p in vision}
    stored = next(c for c in suspect.components if c.name == "vision").tensors
    assert paired == set(stored)
    assert all(p.reference_component == "vision" and p.paired_by == "role" for p in vision)
    assert {p.role for p in vision if p.layer == 0} >= {
        "attn.q.weight",
        "attn.k.weight",
        "attn.v.weight",
        "attn.q.bias",
    }
    q = next(p for p in vision if p.role == "attn.q.weight" and p.layer == 3)
    assert q.n_heads == 4 and q.head_dim == 16 and q.suspect.shape == (64, 64)
    assert {p.suspect_component for p in result.pairs} == {"vision"}
    assert not result.not_comparable
    assert not [n for n in result.unpaired_suspect if n.startswith("model.vision_model.")]
    assert any(n.startswith("model.language_model.model.layers.") for n in result.unpaired_suspect)


def test_the_true_tower_among_three_siblings_is_chosen_with_its_margin(build, save):
    base = S.qwen25_vl_vision(1, **build.vision)
    config = {"model_type": "qwen2_5_vl", "vision_config": build.vision_config}
    siblings = [save(f"sibling{k}", S.fine_tune(base, 0.6, seed=20 + k), config) for k in range(3)]
    true = S.fine_tune(base, 0.6, seed=21)
    suspect = save("hcx", build.hcx_vlm(S.fine_tune(true, 0.05, seed=3), seed=5))
    report = compare(suspect, siblings, component="vision")
    vision = next(c for c in report.components if c.suspect_component == "vision")
    assert vision.reference == str(siblings[1])
    assert vision.runner_up in {str(siblings[0]), str(siblings[2])}
    assert vision.margin is not None and vision.margin > 0.05
