"""Scan against the zoo's registry: true parents first, independents find nothing, the VLM's tower
found while its language model is not, the lineage chain, and a filter that drops no true source."""

import json
import math
import subprocess
import sys

import pytest

from scratchcheck.compare import compare
from scratchcheck.fingerprint import open_fingerprint, sampled_copy
from scratchcheck.io import open_model
from scratchcheck.registry.candidates import shape_keys
from scratchcheck.registry.scan import RUNNERS_UP, scan
from scratchcheck.registry.store import Registry
from scratchcheck.report.scan_report import render_scan_html, render_scan_markdown, scan_schema

pytestmark = pytest.mark.slow

MAIN = {"ft-vit-sib-7b": "vision"}  # the component a suspect's parent is judged on; else language_model


@pytest.fixture(scope="module")
def scans(zoo, zoo_registry):
    cache = {}

    def get(name):
        if name not in cache:
            with Registry(zoo_registry) as reg:
                cache[name] = scan(str(zoo.suspects / name), reg)
        return cache[name]

    return get


def component(report, name):
    return next(c for c in report.components if c.component == name)


@pytest.mark.parametrize(
    "suspect",
    ["ft-small-b", "perm-wide-y", "drop-wide-z", "vocab-small-c", "noised-moe-p", "ft-vit-sib-7b", "chain-c"],
)
def test_every_derived_suspect_finds_its_true_parent_first(zoo, scans, suspect):
    comp = component(scans(suspect), MAIN.get(suspect, "language_model"))
    lead = comp.sources[0]
    assert lead.entry == zoo.parents[suspect]
    assert lead.verdict in ("derived", "identical") and lead.p_value < 1e-6
    assert comp.margin is not None and comp.margin > 0.02 and comp.runner_up != lead.entry


def test_siblings_rank_the_true_one_first_and_its_sibling_is_reached_through_it(scans):
    comp = component(scans("ft-vit-sib-7b"), "vision")
    assert [s.entry for s in comp.sources] == ["vit-sib-7b"]
    assert [(b.entry, b.through, b.relation) for b in comp.behind] == [
        ("vit-sib-3b", "vit-sib-7b", "related")
    ]
    assert comp.runner_up == "vit-sib-3b"


def test_lineage_chain_names_the_nearest_source_and_the_ancestor_through_it(scans):
    report = scans("chain-c")
    for comp in report.components:
        assert [s.entry for s in comp.sources] == ["chain-b"], comp
        assert [(b.entry, b.through, b.relation) for b in comp.behind] == [("chain-a", "chain-b", "ancestor")]
        assert comp.runner_up == "chain-a" and comp.margin > 0


def test_the_bar_rises_with_the_registry(zoo, scans, tmp_path):
    from scratchcheck.registry.sources import add_source

    with Registry(tmp_path / "one.sqlite") as one:
        add_source(one, str(zoo.refs / "small-b"))
        alone = component(scan(str(zoo.suspects / "ft-small-b"), one), "language_model").sources[0]
    among_20 = component(scans("ft-small-b"), "language_model").sources[0]
    # the smallest p of the family is multiplied by its size: 3 components x 1 entry, then x 20 entries
    assert among_20.log10_p - alone.log10_p == pytest.approx(math.log10(20), abs=1e-9)


@pytest.mark.parametrize("suspect", ["indep-small", "indep-vit"])
def test_independent_suspects_find_nothing_and_say_what_the_tests_could_see(scans, suspect):
    report = scans(suspect)
    # the screen keeps none of the candidates; the closest it dropped still gets the full test
    assert report.registry_size == 20 and report.candidates >= 3 and report.screened == 0
    for comp in report.components:
        assert comp.verdict == "no_known_source" and not comp.sources and not comp.behind
        assert comp.compared == RUNNERS_UP and comp.power is not None and comp.power < 0.1
        assert comp.best_independent is not None and comp.best_independent.verdict == "not_found"


def test_vlm_finds_its_vision_towers_parent_and_no_source_for_its_language_model(scans):
    report = scans("vlm")
    vision = component(report, "vision")
    assert vision.sources[0].entry == "vit-1" and vision.sources[0].p_value < 1e-6
    assert component(report, "language_model").verdict == "no_known_source"


def test_entries_registered_without_sketches_get_them_at_the_next_scan(zoo, tmp_path):
    from scratchcheck.registry.sources import fingerprint_bytes

    made = fingerprint_bytes(str(zoo.refs / "small-b"))
    with Registry(tmp_path / "old.sqlite") as reg:
        reg.add([made.data], name="small-b", shapes=made.shapes)  # as a registry before schema 3 holds it
        assert [e.name for e in reg.unsketched()] == ["small-b"]
        report = scan(str(zoo.suspects / "ft-small-b"), reg)
        assert reg.unsketched() == [] and report.screened == 1
        assert component(report, "language_model").sources[0].entry == "small-b"


def test_a_read_only_registry_is_scanned_without_writing_and_refuses_adds(zoo, tmp_path, monkeypatch):
    """A registry on a read-only mount or shared by another user: the sketches its entries lack are
    made for this scan alone, the file is left as it was, and an add says why it cannot be done."""
    import os

    from scratchcheck.errors import UsageError
    from scratchcheck.registry import store
    from scratchcheck.registry.sources import fingerprint_bytes

    made = fingerprint_bytes(str(zoo.refs / "small-b"))
    path = tmp_path / "shared.sqlite"
    with Registry(path) as reg:
        reg.add([made.data], name="small-b", shapes=made.shapes)  # without sketches, as before schema 3
    before = path.read_bytes()
    # Root may write anywhere; what a user without write permission sees is emulated.
    monkeypatch.setattr(store.os, "access", lambda p, mode: mode != os.W_OK)
    with Registry(path) as reg:
        assert reg.read_only and [e.name for e in reg.unsketched()] == ["small-b"]
        report = scan(str(zoo.suspects / "ft-small-b"), reg)
        assert report.screened == 1
        assert component(report, "language_model").sources[0].entry == "small-b"
        assert [e.name for e in reg.unsketched()] == ["small-b"]  # nothing was stored
        with pytest.raises(UsageError, match="read-only"):
            reg.add([made.data], name="again", shapes=made.shapes)
    assert path.read_bytes() == before
    assert not list((tmp_path / "shared.sqlite.blobs").glob("*.partial"))


@pytest.mark.parametrize(
    ("suspect", "parent"),
    [
        ("perm-wide-y", "wide-y"),
        ("drop-wide-z", "wide-z"),
        ("vocab-small-c", "small-c"),
        ("rot-small-a", "small-a"),
    ],
)
def test_the_filter_drops_no_source_the_full_test_would_find(zoo, zoo_registry, suspect, parent):
    with (
        Registry(zoo_registry) as reg,
        open_model(zoo.suspects / suspect) as model,
        sampled_copy(model) as fp,
    ):
        kept = {e.name for e in reg.sharing_shapes(shape_keys(fp))}
        assert parent in kept
        for entry in reg.entries():
            if entry.name in kept:
                continue
            with open_fingerprint(reg.fingerprint_path(entry)) as ref:
                verdicts = {c.verdict for c in compare(fp, [ref]).components}
            assert not verdicts & {"identical", "derived", "inconclusive"}, (entry.name, verdicts)


def test_reports_validate_and_the_command_writes_them(zoo, zoo_registry, scans, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    report = scans("noised-moe-p")
    jsonschema.validate(report.to_dict(), scan_schema())
    markdown, html = render_scan_markdown(report), render_scan_html(report)
    assert "derived from moe-p (noised)" in markdown and "derived from moe-p (noised)" in html
    out = [tmp_path / f"scan.{ext}" for ext in ("json", "md", "html")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scratchcheck",
            "scan",
            str(zoo.suspects / "noised-moe-p"),
            "--registry",
            str(zoo_registry),
            "--json",
            str(out[0]),
            "--markdown",
            str(out[1]),
            "--html",
            str(out[2]),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "derived from moe-p (noised)" in " ".join(result.stdout.split())
    data = json.loads(out[0].read_text())
    jsonschema.validate(data, scan_schema())
    assert data["schema"] == "scratchcheck.scan/1" and data["registry_size"] == 20
    assert all(p.exists() for p in out)
