"""GLM-4.5-Air vs Solar-Open in miniature: different head counts, expert widths and vocabularies,
and an MTP block saved as layer N in one of them."""

from scratchcheck.align import align
from scratchcheck.compare import measure_coverage


def _pair(build, save, opened):
    glm = build.moe_decoder(1, heads=8, head_dim=16, expert_width=32, vocab=160, mtp=True)
    solar = build.moe_decoder(2, heads=4, head_dim=16, expert_width=48, vocab=192, mtp=False)
    glm_config = {
        "model_type": "glm4_moe",
        "num_hidden_layers": 3,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 16,
    }
    solar_config = {
        "model_type": "solar_open",
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    }
    return opened(save("solar", solar, solar_config)), opened(save("glm", glm, glm_config))


def test_shapes_that_differ_are_not_comparable_and_the_mtp_block_stays_unpaired(build, save, opened):
    solar, glm = _pair(build, save, opened)
    assert [c.name for c in glm.components if c.kind == "extra"] == ["mtp"]
    mtp = next(c for c in glm.components if c.name == "mtp")
    assert all(".layers.3." in n for n in mtp.tensors)
    result = align(solar, glm)
    roles = {n.suspect: n.reason.split(":")[0] for n in result.not_comparable}
    assert set(roles.values()) == {
        "attn.q.weight",
        "attn.o.weight",
        "expert.gate.weight",
        "expert.up.weight",
        "expert.down.weight",
        "shared_expert.gate.weight",
        "shared_expert.up.weight",
        "shared_expert.down.weight",
    }
    assert all(p.reference_component != "mtp" for p in result.pairs)
    assert set(mtp.tensors) <= set(result.unpaired_reference)
    compared = {p.role for p in result.pairs}
    assert compared == {
        "attn.k.weight",
        "attn.v.weight",
        "norm.attn.weight",
        "norm.mlp.weight",
        "norm.final.weight",
        "router.weight",
        "embed.weight",
        "head.weight",
    }
    # Vocabularies of 192 and 160 rows, no tokenizers, no common rows: the first 160 rows pair by position.
    assert {(rows.method, rows.kept, rows.added, rows.dropped) for _, rows in result.vocab} == {
        ("prefix", 160, 32, 0)
    }
    coverage = measure_coverage(solar, glm, result, "glm")
    assert 0 < coverage.suspect_share < 0.2
    assert coverage.suspect_params_compared == sum(p.suspect.numel for p in result.pairs)


def test_the_mtp_block_is_extra_from_the_config_alone(build, save, opened):
    weights = build.moe_decoder(1, heads=8, head_dim=16, expert_width=32, vocab=160, mtp=True)
    weights = {n: w for n, w in weights.items() if not any(m in n for m in ("eh_proj", "enorm", "hnorm"))}
    model = opened(save("glm", weights, {"num_hidden_layers": 3}))
    assert next(c for c in model.components if c.kind == "extra").tensors == tuple(
        n for n in weights if ".layers.3." in n
    )
