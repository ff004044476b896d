from dataclasses import replace

from rich.console import Console

from scratchcheck.inspection import ConfigEntry, ModelInspection, PrefixShare
from scratchcheck.report.terminal import render_compare, render_inspect
from scratchcheck.results import ComponentSummary


def text(render, *args, width=110, **kwargs) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    render(*args, console, **kwargs)
    return console.export_text()


EXPECTED_HEAD = """\
Overall verdict: DERIVED
suspect    hcx-style-vlm  (safetensors, 2.08M params, 41 tensors)  /models/hcx-style-vlm
reference  qwen-vl-reference  (safetensors, 2.1M params, 150 tensors)  /models/qwen-vl-reference

vision (vision tower): DERIVED from qwen-vl-reference [vision]
  670K params, 32.2% of the model · p < 1e-300 · Pearson 0.9780 · coverage 99.9% (16 tensors)
  kind: fine-tuned · layer map: identity · detectable |r| >= 0.0040
projector: NOT COMPARABLE with qwen-vl-reference
  12.3K params, 0.6% of the model · p = n/a · Pearson n/a · coverage 0.0% (0 tensors)
language_model (language model): INDEPENDENT of qwen-vl-reference [language_model]
  1.4M params, 67.2% of the model · p = 0.62 · Pearson 0.0012 · coverage 98.0% (24 tensors)
  detectable |r| >= 0.0100

component        verdict          reference           params   share   coverage   Pearson    p-value   tensors
──────────────────────────────────────────────────────────────────────────────────────────────────────────────
vision           derived          qwen-vl-reference     670K   32.2%      99.9%    0.9780   < 1e-300        16
projector        not comparable   qwen-vl-reference    12.3K    0.6%       0.0%       n/a        n/a         0
language_model   independent      qwen-vl-reference     1.4M   67.2%      98.0%    0.0012       0.62        24
"""


def test_headlines_and_table_exactly(report):
    out = text(render_compare, report)
    assert out.startswith(EXPECTED_HEAD), out


def test_narrow_terminal_keeps_every_verdict_readable(report):
    out = text(render_compare, report, width=80)
    table = out[out.index("component ") :]
    assert "…" not in out
    assert "language_model   independent" in table and "projector        not comparable" in table
    assert "tensors" not in table.splitlines()[0]  # the tensor count is in the headline above


def test_warnings_have_their_own_block(report):
    out = text(render_compare, report, width=300)
    block = out[out.index("╭─ Warnings") : out.index("╰", out.index("╭─ Warnings"))]
    assert "raw cosine is at least 0.9 for 8 tensor pair(s)" in block and "Pearson 0.0120" in block
    assert block.count("raw cosine") == 2  # the pipeline's warning once, not repeated by the report
    assert "1 non-learned tensor(s) excluded" in block
    assert "projector: not comparable" in block and "not evidence of independence" in block


def test_metadata_channel_is_a_separate_block(report):
    out = text(render_compare, report)
    assert "Metadata channel" in out
    channel = out[out.index("Metadata channel") :]
    assert "strong" in channel and "qwen2_5_vl_32b_visual_fa2" in channel
    assert "hidden_size 128" not in out  # 'none'-strength observations stay in the files


def test_explain_adds_a_paragraph_per_component(report):
    plain = text(render_compare, report)
    out = text(render_compare, report, explain=True, width=200)
    assert "What was compared" not in plain
    assert out.count("What was compared:") == 3
    assert out.count("What the test showed:") == 3 and out.count("What it does not show:") == 3
    assert "that the language model was trained from scratch" in out


def test_pipeline_warnings_and_markup_in_names_are_printed_verbatim(report):
    out = text(render_compare, replace(report, warnings=["tensor [bold]x[/bold] skipped"]))
    assert "tensor [bold]x[/bold] skipped" in out


def test_inspect_exactly():
    inspection = ModelInspection(
        schema="scratchcheck.inspect/1",
        path="/models/tiny",
        format="safetensors",
        files=[{"path": "/models/tiny/model.safetensors", "bytes": 4096}],
        tensors=3,
        params=1000,
        dtypes={"F32": 900, "BF16": 100},
        prefixes=[PrefixShare("model.layers", 900, 0.9, 2), PrefixShare("lm_head", 100, 0.1, 1)],
        configs=[ConfigEntry("config.json", "$", "llama", ["LlamaForCausalLM"])],
        components=[ComponentSummary("language_model", "language_model", 1000, 1.0, 3)],
        metadata={
            "config_facts": [
                {"kind": "model_type", "file": "config.json", "json_path": "$.model_type", "value": "llama"}
            ]
        },
    )
    assert text(render_inspect, inspection, width=90) == (
        "tiny  (safetensors)  /models/tiny\n"
        "1 file(s), 4,096 bytes · 3 tensors · 1,000 parameters (1K)\n"
        "  /models/tiny/model.safetensors  4,096 bytes\n"
        "dtype   params   share\n"
        "──────────────────────\n"
        "F32        900   90.0%\n"
        "BF16       100   10.0%\n"
        "component        kind             params    share   tensors\n"
        "───────────────────────────────────────────────────────────\n"
        "language_model   language_model    1,000   100.0%         3\n"
        "prefix         params   share   tensors\n"
        "───────────────────────────────────────\n"
        "model.layers      900   90.0%         2\n"
        "lm_head           100   10.0%         1\n"
        "config        path   model_type   architectures   \n"
        "──────────────────────────────────────────────────\n"
        "config.json   $      llama        LlamaForCausalLM\n"
        "╭─ Metadata channel (config, tokenizer, code; separate from the weights) ────────────────╮\n"
        "│ model_type: llama  (config.json $.model_type)                                          │\n"
        "╰────────────────────────────────────────────────────────────────────────────────────────╯\n"
    )
