"""Upcycled MoE layers: every expert meets the dense MLP it was copied from; the router is new."""

from scratchcheck import structural
from scratchcheck import synthetic as S
from scratchcheck.align import align

DECODER = {"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 96, "vocab": 128}


def test_every_expert_pairs_with_the_dense_mlp_of_its_layer(save, opened):
    dense = S.llama_decoder(1, **DECODER)
    moe = S.fine_tune(structural.upcycle(dense, 4), 0.1, seed=2)
    result = align(opened(save("moe", moe)), opened(save("dense", dense)))
    upcycled = [p for p in result.pairs if p.paired_by == "upcycled"]
    assert len(upcycled) == 2 * 4 * 3  # layers x experts x (gate, up, down)
    for p in upcycled:
        part = p.role.split(".")[1]
        assert p.reference.name == f"model.layers.{p.layer}.mlp.{part}_proj.weight"
        assert p.suspect.name == f"model.layers.{p.layer}.mlp.experts.{p.expert}.{part}_proj.weight"
    assert set(result.unpaired_suspect) == {f"model.layers.{i}.mlp.gate.weight" for i in range(2)}
    assert not result.unpaired_reference and not result.not_comparable
