"""Hand-built report objects, so the report tests do not depend on the pipeline's numbers."""

from __future__ import annotations

import math

import numpy as np

from scratchcheck.results import (
    SCHEMA,
    ComparisonReport,
    ComponentComparison,
    ComponentSummary,
    Coverage,
    LayerMatrix,
    ModelSummary,
    NotComparable,
    TensorComparison,
    TestResult,
)

SUSPECT = "/models/hcx-style-vlm"
REFERENCE = "/models/qwen-vl-reference"


def tensor(component: str, name: str, role: str, layer: int | None, r: float, **kw) -> TensorComparison:
    """One learned pair whose numbers follow from its Pearson ``r`` (deterministic, no randomness)."""
    defaults = dict(
        suspect=name,
        reference=name.replace("model.vision_model.", "visual.").replace("language_model.", ""),
        reference_model=REFERENCE,
        suspect_component=component,
        reference_component=component,
        role=role,
        layer=layer,
        reference_layer=layer,
        shape=[96, 96],
        numel=9216,
        paired_by="role",
        learned=True,
        cosine=r,
        pearson=r,
        rel_l2=math.sqrt(2 * max(0.0, 1 - r)),
        max_abs_diff=0.02 + (1 - r) * 0.1,
        frac_equal=0.0,
        bit_identical=False,
        spearman=r,
        p_value=0.0 if r > 0.5 else 0.5,
        transform="",
    )
    defaults.update(kw)
    return TensorComparison(**defaults)


def diagonal_matrix(component: str, role: str, n: int, diag: float, off: float) -> LayerMatrix:
    values = [[diag if i == j else off + 0.001 * ((i + j) % 5) for j in range(n)] for i in range(n)]
    return LayerMatrix(
        component,
        role,
        list(range(n)),
        list(range(n)),
        values,
        "pearson",
        "identity",
        [[i, i] for i in range(n)],
        1e-12,
    )


def metadata_channel() -> dict:
    return {
        REFERENCE: {
            "suspect": {
                "name": "hcx-style-vlm",
                "files": ["config.json"],
                "config_facts": [
                    {
                        "kind": "model_type",
                        "file": "config.json",
                        "json_path": "$.vision_config.model_type",
                        "value": "qwen2_5_vl",
                    },
                    {
                        "kind": "name_or_path",
                        "file": "config.json",
                        "json_path": "$.vision_model_name_or_path",
                        "value": "/mnt/shared/ckpt/qwen2_5_vl_32b_visual_fa2/",
                    },
                ],
                "tokenizer": None,
                "licences": [],
                "copyrights": [],
                "code_files": [],
                "problems": [{"file": "tokenizer", "reason": "missing"}],
            },
            "reference": {
                "name": "qwen-vl-reference",
                "files": ["config.json"],
                "config_facts": [],
                "problems": [],
            },
            "config_diff": {
                "files_compared": ["config.json"],
                "only_suspect_files": [],
                "only_reference_files": [],
                "equal_values": 4,
                "differences": [
                    {
                        "file": "config.json",
                        "json_path": "$.model_type",
                        "change": "changed",
                        "suspect": "vlm",
                        "reference": "qwen2_5_vl",
                    }
                ],
            },
            "tokenizer_overlap": None,
            "code_matches": [],
            "observations": [
                {
                    "channel": "config",
                    "strength": "strong",
                    "finding": "The suspect's config names '/mnt/shared/ckpt/qwen2_5_vl_32b_visual_fa2/' in vision_model_name_or_path.",
                    "meaning": "A training path left in the config names the reference family's visual tower.",
                    "where": ["config.json $.vision_model_name_or_path"],
                },
                {
                    "channel": "config",
                    "strength": "none",
                    "finding": "Both configs declare hidden_size 128.",
                    "meaning": "Common for independent models.",
                    "where": ["config.json"],
                },
            ],
        }
    }


def vlm_report(layers: int = 8, vision_layers: int = 8) -> ComparisonReport:
    """The demo's question: a VLM whose vision tower is a fine-tuned copy and whose LM is new."""
    tensors = []
    for i in range(vision_layers):
        for role, r in (("attn.qkv.weight", 0.985 - 0.002 * i), ("mlp.up_proj.weight", 0.98 - 0.002 * i)):
            name = f"model.vision_model.blocks.{i}.{role}"
            tensors.append(tensor("vision", name, role, i, r, paired_by="name"))
    tensors.append(
        TensorComparison(
            "model.vision_model.rotary_pos_emb.inv_freq",
            "visual.rotary_pos_emb.inv_freq",
            REFERENCE,
            "vision",
            "vision",
            "rotary_pos_emb.inv_freq",
            None,
            None,
            [24],
            24,
            "name",
            False,
            excluded_reason="RoPE inv_freq is fixed by the config",
        )
    )
    for i in range(layers):
        for role, r in (
            ("self_attn.q_proj.weight", 0.001 * (i % 3) - 0.001),
            ("mlp.up_proj.weight", 0.0005 * i),
        ):
            name = f"model.language_model.model.layers.{i}.{role}"
            tensors.append(tensor("language_model", name, role, i, r, shape=[128, 128], numel=16384))
        name = f"model.language_model.model.layers.{i}.input_layernorm.weight"
        tensors.append(
            tensor(
                "language_model",
                name,
                "input_layernorm.weight",
                i,
                0.012,
                cosine=0.985,
                shape=[128],
                numel=128,
                raw_cosine_uninformative=True,
            )
        )
    vision_params = 670_000
    lm_params = 1_400_000
    proj_params = 12_288
    total = vision_params + lm_params + proj_params
    shuffle = "Coordinate shuffle: no element-wise correspondence; r*sqrt(n-1) ~ N(0, 1)."
    components = [
        ComponentComparison(
            "vision",
            "vision",
            REFERENCE,
            "vision",
            "derived",
            "fine-tuned",
            0.0,
            vision_params,
            vision_params / total,
            0.999,
            0.978,
            params_compared=669_976,
            tensors_compared=2 * vision_layers,
            power=0.004,
            tests=[
                TestResult("coordinate-shuffle", 94.2, 0.0, shuffle, 2 * vision_layers),
                TestResult(
                    "layer-diagonal",
                    7.9,
                    1e-12,
                    "Mismatched layers: diagonal no stronger than off-diagonal.",
                    vision_layers,
                ),
                TestResult(
                    "fisher",
                    1380.0,
                    0.0,
                    "Per-tensor p-values, Fisher-combined: chi2(2k).",
                    2 * vision_layers,
                ),
            ],
            layer_matrices=[
                diagonal_matrix("vision", "attn.qkv.weight", vision_layers, 0.98, 0.01),
                diagonal_matrix("vision", "mlp.up_proj.weight", vision_layers, 0.975, 0.0),
            ],
        ),
        ComponentComparison(
            "projector",
            "projector",
            REFERENCE,
            None,
            "not_comparable",
            None,
            None,
            proj_params,
            proj_params / total,
            0.0,
            None,
            not_comparable=[
                NotComparable(
                    "model.mm_projector.0.weight",
                    "visual.merger.mlp.0.weight",
                    "shapes differ: [128, 96] vs [512, 384]",
                    12288,
                )
            ],
        ),
        ComponentComparison(
            "language_model",
            "language_model",
            REFERENCE,
            "language_model",
            "independent",
            None,
            0.62,
            lm_params,
            lm_params / total,
            0.98,
            0.0012,
            params_compared=1_372_000,
            tensors_compared=3 * layers,
            power=0.01,
            tests=[TestResult("coordinate-shuffle", 0.3, 0.62, shuffle, 3 * layers)],
            layer_matrices=[
                LayerMatrix(
                    "language_model",
                    "mlp.up_proj.weight",
                    list(range(layers)),
                    list(range(layers)),
                    [[0.001 * ((i * 7 + j * 3) % 5 - 2) for j in range(layers)] for i in range(layers)],
                    p_value=0.55,
                )
            ],
        ),
    ]
    suspect = ModelSummary(
        SUSPECT,
        "safetensors",
        total,
        len(tensors),
        [ComponentSummary(c.suspect_component, c.component_kind, c.params, c.share, 10) for c in components],
    )
    reference = ModelSummary(REFERENCE, "safetensors", 2_100_000, 150)
    return ComparisonReport(
        schema=SCHEMA,
        verdict="derived",
        suspect=suspect,
        references=[reference],
        components=components,
        tensors=tensors,
        # As the pipeline words it (verdict._warnings): the report renders these, it does not re-derive them.
        warnings=[
            "language_model vs /models/qwen-vl-reference: raw cosine is at least 0.9 for 8 tensor pair(s) "
            "(e.g. model.language_model.model.layers.0.input_layernorm.weight: cosine 0.9991, Pearson 0.0120), "
            "but raw cosine with no element-wise correspondence at all would already be about as high for "
            "these positive, near-constant tensors; it is shown, not used as evidence."
        ],
        shares={
            REFERENCE: {
                "derived": vision_params / total,
                "independent": lm_params / total,
                "not_comparable": proj_params / total,
            }
        },
        metadata=metadata_channel(),
        version="0.1.0",
        coverage=[
            Coverage(
                REFERENCE,
                2_041_976,
                total,
                2_050_000,
                2_100_000,
                [],
                [],
                components[1].not_comparable,
                [["model.vision_model.rotary_pos_emb.inv_freq", "RoPE inv_freq is fixed by the config"]],
            )
        ],
    )


LM_ROLES = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
]


def large_report(layers: int = 80, vision_layers: int = 32) -> ComparisonReport:
    """An 80-layer language model (independent) and a 32-block vision tower (derived), every role with
    its layer matrix: the size the HTML must stay reasonable for."""
    rng = np.random.default_rng(0)
    base = vlm_report(layers=2, vision_layers=2)
    tensors, vision_m, lm_m = [], [], []
    for role in (
        "attn.qkv.weight",
        "attn.proj.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
        "norm1.weight",
    ):
        values = (rng.normal(0, 0.01, (vision_layers, vision_layers)) + np.eye(vision_layers) * 0.97).tolist()
        vision_m.append(
            LayerMatrix(
                "vision",
                role,
                list(range(vision_layers)),
                list(range(vision_layers)),
                values,
                layer_map="identity",
                mapping=[[i, i] for i in range(vision_layers)],
                p_value=1e-30,
            )
        )
        for i in range(vision_layers):
            tensors.append(tensor("vision", f"model.vision_model.blocks.{i}.{role}", role, i, values[i][i]))
    for role in LM_ROLES:
        values = rng.normal(0, 0.01, (layers, layers)).tolist()
        lm_m.append(
            LayerMatrix("language_model", role, list(range(layers)), list(range(layers)), values, p_value=0.4)
        )
        for i in range(layers):
            tensors.append(
                tensor(
                    "language_model", f"model.language_model.model.layers.{i}.{role}", role, i, values[i][i]
                )
            )
    from dataclasses import replace

    vision, projector, lm = base.components
    components = [
        replace(vision, layer_matrices=vision_m, tensors_compared=6 * vision_layers),
        projector,
        replace(lm, layer_matrices=lm_m, tensors_compared=9 * layers),
    ]
    return replace(base, components=components, tensors=tensors)
