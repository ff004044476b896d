"""The disputes in miniature for the audit tests (compared once per session by ``conftest.py``).

* ``hcx``: a HyperCLOVA X-style VLM whose vision tower is a fine-tune of the Qwen2.5-VL-style
  reference's, with a training path to it left in the config, and a language model of its own.
* ``solar``: a Solar-style decoder next to a GLM-style one: only the norm gains line up (raw cosine
  ~0.99 for any two such models), everything else has other shapes.
* ``unrelated_shapes``: nothing of the suspect has the shape of anything in the reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scratchcheck import compare, synthetic
from scratchcheck.results import ComparisonReport

LEAKED_PATH = "/mnt/shared/ckpt/qwen2_5_vl_32b_visual_fa2/"
LM = {"layers": 4, "hidden": 64, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 256}
APACHE = "Apache License, Version 2.0, January 2004\nhttp://www.apache.org/licenses/\n"
DECLARATION = (
    "# HCX-mini\n\nThe vision encoder is taken from Qwen2.5-VL-32B-Instruct (Apache-2.0) and fine-tuned; "
    "the language model was trained from scratch.\n"
)
# A declared-borrowing policy allowing the HCX vision tower, declared in the suspect's README.md.
DECLARED_POLICY = """extends = "declared-borrowing"
[[allow]]
component = "vision"
from = "Qwen2.5-VL*"
license = "Apache-2.0"
declared_in = "README.md"
"""


@dataclass(frozen=True)
class Case:
    report: ComparisonReport
    suspect: Path
    reference: Path


def hcx_models(folder: Path) -> tuple[Path, Path]:
    vision = synthetic.qwen25_vl_vision(0)
    qwen = {**vision, **synthetic.llama_decoder(10, **LM)}
    config = {**synthetic.llama_config(**LM), "model_type": "qwen2_5_vl", "architectures": ["Qwen2_5_VL"]}
    reference = synthetic.save(qwen, folder / "qwen2.5-vl-mini", config)
    (reference / "LICENSE").write_text(APACHE)
    lm = synthetic.rename_prefix(synthetic.llama_decoder(11, **LM), "model.", "model.language_model.model.")
    hcx = {
        **synthetic.rename_prefix(synthetic.fine_tune(vision, 0.1, seed=3), "visual.", "model.vision_model."),
        **synthetic.projector(3, inp=96, out=LM["hidden"]),
        **synthetic.rename_prefix(lm, "lm_head.", "model.language_model.lm_head."),
    }
    suspect_config = {
        "architectures": ["HCXVisionForCausalLM"],
        "model_type": "vlm",
        "text_config": synthetic.llama_config(**LM),
        "vision_config": {"model_type": "qwen2_5_vl", "depth": 4, "hidden_size": 64},
        "vision_model_name_or_path": LEAKED_PATH,
    }
    return synthetic.save(hcx, folder / "hcx-mini", suspect_config), reference


def solar_models(folder: Path) -> tuple[Path, Path]:
    """As in tests/verdict/test_acceptance.py: same hidden size, every other shape different."""
    shape = {"layers": 4, "hidden": 256, "heads": 8, "intermediate": 512}
    glm = synthetic.llama_decoder(1, **shape, kv_heads=2, vocab=512, experts=4, expert_intermediate=64)
    solar = synthetic.llama_decoder(
        2, **shape, kv_heads=4, vocab=640, experts=8, expert_intermediate=48, norm_mean=0.3
    )
    rng = np.random.default_rng(0)
    for i in range(4):
        p = f"model.layers.{i}.self_attn."
        solar[p + "q_proj.weight"] = (rng.standard_normal((384, 256)) / 16).astype(np.float32)
        solar[p + "o_proj.weight"] = (rng.standard_normal((256, 384)) / 16).astype(np.float32)
    return synthetic.save(solar, folder / "solar"), synthetic.save(glm, folder / "glm")


def unrelated_shape_models(folder: Path) -> tuple[Path, Path]:
    small = synthetic.llama_decoder(1, layers=2, hidden=32, heads=2, kv_heads=1, intermediate=48, vocab=100)
    large = synthetic.llama_decoder(2, layers=2, hidden=48, heads=3, kv_heads=1, intermediate=80, vocab=120)
    return synthetic.save(small, folder / "small"), synthetic.save(large, folder / "large")


def compared(folder: Path, build) -> Case:
    suspect, reference = build(folder)
    return Case(compare(suspect, [reference]), suspect, reference)


def write_policy(folder: Path, text: str, name: str = "policy.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def declare(suspect: Path, text: str | None) -> None:
    """Give the suspect a README.md with ``text``, or none."""
    readme = suspect / "README.md"
    if text is None:
        readme.unlink(missing_ok=True)
    else:
        readme.write_text(text)


def as_json(value) -> dict:
    return json.loads(json.dumps(value.to_dict()))
