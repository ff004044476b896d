import re

from report_builders import large_report, vlm_report

from scratchcheck.report.markdown import TENSOR_ROWS, render_markdown, table, write_markdown


def tables(text: str) -> list[list[str]]:
    """Blocks of consecutive lines that start with '|'."""
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def test_every_table_is_well_formed():
    text = render_markdown(vlm_report())
    found = tables(text)
    assert len(found) >= 6
    for block in found:
        assert re.fullmatch(r"\|(---:?\|)+", block[1]), block[1]
        widths = {cells(line) for line in block}
        assert widths == {cells(block[0])}, block
        idx = text.index(block[0])
        assert text[:idx].endswith("\n\n") or idx == 0, "a table needs a blank line before it"


def test_summary_lines_and_component_table():
    text = render_markdown(vlm_report())
    assert "**Overall verdict: derived**" in text
    assert (
        "- **vision** (vision tower, 670K params, 32.2% of the model): **derived** from `qwen-vl-reference`"
        in text
    )
    assert (
        "| language_model | independent | qwen-vl-reference | 1.4M | 67.2% | 98.0% | 0.0012 | 0.62 | 24 |"
        in text
    )
    assert "### Warnings" in text and "raw cosine is at least 0.9 for 8 tensor pair(s)" in text
    assert "### Metadata channel (separate from the weight verdicts)" in text


def test_raw_cosine_has_pearson_beside_it_and_is_struck_when_uninformative():
    text = render_markdown(vlm_report())
    row = next(
        line for line in text.splitlines() if "layers.0.input_layernorm" in line and line.startswith("|")
    )
    parts = [p.strip() for p in row.split("|")]
    assert parts[3] == "0.0120" and parts[4] == "~~0.9850~~ (uninformative)"


def test_pipes_in_cells_are_escaped():
    out = table(["a", "b"], [["x|y", ""]])
    assert out.splitlines()[2] == "| x\\|y |   |" and cells(out.splitlines()[2]) == 2


def test_large_reports_cap_the_per_tensor_rows(tmp_path):
    path = write_markdown(large_report(layers=80), tmp_path / "r.md")
    text = path.read_text()
    assert f"the {TENSOR_ROWS} least similar of 720" in text
    assert len(text) < 200_000
