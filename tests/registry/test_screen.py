"""The scan's screen: its two statistics on hand-made sketches, then the zoo: every true source
survives it, whatever the disguise, nothing it drops is found by the full test, and it drops the
unrelated entries."""

import math

import numpy as np
import pytest

from scratchcheck.compare import compare
from scratchcheck.fingerprint import open_fingerprint, sampled_copy
from scratchcheck.io import open_model
from scratchcheck.registry import screen as screen_module
from scratchcheck.registry.candidates import shape_keys
from scratchcheck.registry.screen import SCREEN_ALPHA, Block, screen, sketch_fingerprint
from scratchcheck.registry.store import Registry

LABELS = [f"language_model/mlp.up_proj.weight/{layer}/None" for layer in range(6)]


def _units(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=1, keepdims=True)
    return (centred / np.linalg.norm(centred, axis=1, keepdims=True)).astype(np.float16)


def _rows(entries: dict[str, np.ndarray], labels: list[str]) -> list[tuple[str, str, str, bytes]]:
    return [(name, "coord 8x64", *Block(labels, _units(x)).encode()) for name, x in sorted(entries.items())]


def test_a_moved_tensor_and_a_weak_relation_spread_over_the_layers_are_kept(monkeypatch):
    rng = np.random.default_rng(0)
    mine = rng.standard_normal((6, 2048))
    entries = {f"unrelated-{i}": rng.standard_normal((6, 2048)) for i in range(40)}
    moved = rng.standard_normal((6, 2048))
    moved[4] = mine[1] + 0.5 * rng.standard_normal(2048)  # one layer's tensor, now at another layer
    entries["moved"] = moved
    # every layer related at r ~ 0.05: no single pair stands out (z ~ 2.3), their sum does
    entries["weak"] = 0.05 * mine + rng.standard_normal((6, 2048))
    suspect = {"coord 8x64": Block(LABELS, _units(mine))}
    result = {s.name: s for s in screen(suspect, _rows(entries, LABELS))}
    assert {name for name, s in result.items() if s.kept} == {"moved", "weak"}
    assert all(s.pairs == 36 for s in result.values())
    # unrelated entries: p spread as chance spreads it, none near the level
    assert min(result[f"unrelated-{i}"].log_p for i in range(40)) > math.log(SCREEN_ALPHA)
    monkeypatch.setattr(screen_module, "_BATCH", 3)  # a key shared by many entries, read in batches
    assert {s.name: s.log_p for s in screen(suspect, _rows(entries, LABELS))} == pytest.approx(
        {name: s.log_p for name, s in result.items()}, rel=1e-4
    )


SOURCES = {
    "ft-small-b": {"small-b"},  # fine-tuned
    "perm-wide-y": {"wide-y"},  # units and heads permuted
    "drop-wide-z": {"wide-z"},  # every other layer dropped
    "vocab-small-c": {"small-c"},  # vocabulary cut and extended
    "rot-small-a": {"small-a", "small-a-chat", "small-a-code"},  # folded and rotated; and its fine-tunes
    "noised-moe-p": {"moe-p"},  # Gaussian noise
    "ft-vit-sib-7b": {"vit-sib-7b", "vit-sib-3b"},  # a fine-tune of one of two siblings
    "chain-c": {"chain-b", "chain-a"},  # a fine-tune of a fine-tune
    "vlm": {"vit-1"},  # a VLM around a fine-tuned registered vision tower
    "indep-small": set(),
    "indep-vit": set(),
}


@pytest.fixture(scope="module")
def screened(zoo, zoo_registry):
    """Per suspect: the shape filter's candidates and the names the screen keeps."""
    out = {}
    with Registry(zoo_registry) as reg:
        for suspect in SOURCES:
            with open_model(zoo.suspects / suspect) as model, sampled_copy(model) as fp:
                sketches = sketch_fingerprint(fp)
                candidates = {e.name for e in reg.sharing_shapes(shape_keys(fp))}
                kept = {s.name for s in screen(sketches, reg.sketches_sharing(sketches)) if s.kept}
            out[suspect] = (candidates, kept)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("suspect", sorted(SOURCES))
def test_the_screen_keeps_every_true_source(screened, suspect):
    candidates, kept = screened[suspect]
    assert SOURCES[suspect] <= candidates
    assert SOURCES[suspect] <= kept


@pytest.mark.slow
def test_the_screen_drops_the_unrelated_candidates(screened):
    """Not a screen otherwise: the shape filter lets whole families through."""
    unrelated = sum(len(c - SOURCES[s]) for s, (c, _) in screened.items())
    kept = sum(len(k - SOURCES[s]) for s, (_, k) in screened.items())
    assert unrelated >= 35 and kept <= 1


@pytest.mark.slow
@pytest.mark.parametrize("suspect", ["perm-wide-y", "drop-wide-z", "vocab-small-c", "rot-small-a", "vlm"])
def test_the_full_test_finds_nothing_the_screen_dropped(zoo, zoo_registry, screened, suspect):
    candidates, kept = screened[suspect]
    with (
        Registry(zoo_registry) as reg,
        open_model(zoo.suspects / suspect) as model,
        sampled_copy(model) as fp,
    ):
        for name in sorted(candidates - kept):
            with open_fingerprint(reg.fingerprint_path(reg.get(name))) as ref:
                verdicts = {c.verdict for c in compare(fp, [ref]).components}
            assert not verdicts & {"identical", "derived", "inconclusive"}, (name, verdicts)
