"""The bundled example: four small models and the three questions a user would ask of them.

Everything is generated (no network, no download): a base decoder, a fine-tune of it, an independent
decoder, a Qwen2.5-VL-style reference, and a HyperCLOVA X-style vision-language model whose vision
tower was taken from the reference and fine-tuned while its language model was trained anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import synthetic as S

LM = {"layers": 8, "hidden": 128, "heads": 4, "kv_heads": 2, "intermediate": 256, "vocab": 512}
VISION = {"depth": 8, "hidden": 96, "heads": 4, "intermediate": 192, "out_hidden": 128}


@dataclass(frozen=True)
class DemoCase:
    name: str
    question: str
    suspect: Path
    reference: Path
    expected: str


def build_demo(folder: str | Path) -> list[DemoCase]:
    """Write the demo models under ``folder`` and return the comparisons to run."""
    folder = Path(folder)
    base = S.llama_decoder(1, **LM)
    S.save(base, folder / "base-lm", S.llama_config(**LM))
    S.save(S.fine_tune(base, strength=0.2, seed=7), folder / "finetuned-lm", S.llama_config(**LM))
    S.save(S.llama_decoder(2, **LM), folder / "independent-lm", S.llama_config(**LM))

    tower = S.qwen25_vl_vision(10, **VISION)
    qwen = {**tower, **S.llama_decoder(11, **LM)}
    S.save(qwen, folder / "qwen-vl-reference", _qwen_vl_config())
    hcx_tower = S.rename_prefix(S.fine_tune(tower, strength=0.1, seed=3), "visual.", "model.vision_model.")
    hcx_lm = S.rename_prefix(S.llama_decoder(12, **LM), "model.", "model.language_model.model.")
    hcx_lm = S.rename_prefix(hcx_lm, "lm_head.", "model.language_model.lm_head.")
    hcx = {**hcx_tower, **S.projector(13, inp=VISION["out_hidden"], out=LM["hidden"]), **hcx_lm}
    S.save(hcx, folder / "hcx-style-vlm", _hcx_config())

    return [
        DemoCase(
            "finetune",
            "Is the fine-tune derived from the base?",
            folder / "finetuned-lm",
            folder / "base-lm",
            "derived",
        ),
        DemoCase(
            "independent",
            "Is an independently trained model related to the base?",
            folder / "independent-lm",
            folder / "base-lm",
            "independent",
        ),
        DemoCase(
            "vlm",
            "Which parts of the HCX-style VLM come from the Qwen-VL-style reference?",
            folder / "hcx-style-vlm",
            folder / "qwen-vl-reference",
            "derived",
        ),
    ]


def _qwen_vl_config() -> dict:
    text = S.llama_config(**LM)
    return {
        **text,
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": VISION["depth"],
            "hidden_size": VISION["hidden"],
            "num_heads": VISION["heads"],
        },
    }


def _hcx_config() -> dict:
    return {
        "architectures": ["HCXVisionForCausalLM"],
        "model_type": "vlm",
        "text_config": S.llama_config(**LM),
        "vision_config": {
            "model_type": "qwen2_5_vl",
            "depth": VISION["depth"],
            "hidden_size": VISION["hidden"],
            "num_heads": VISION["heads"],
        },
        # The kind of leak that settled the real dispute: a training path left in the config.
        "vision_model_name_or_path": "/mnt/shared/ckpt/qwen2_5_vl_32b_visual_fa2/",
    }
