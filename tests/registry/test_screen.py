"""The scan's screen on the zoo: every true source survives it, whatever the disguise, nothing it
drops is found by the full test, and it drops almost every unrelated entry."""

import pytest

from scratchcheck.compare import compare
from scratchcheck.fingerprint import open_fingerprint, sampled_copy
from scratchcheck.io import open_model
from scratchcheck.registry.candidates import shape_keys
from scratchcheck.registry.screen import screen, sketch_fingerprint
from scratchcheck.registry.store import Registry

pytestmark = pytest.mark.slow

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


@pytest.mark.parametrize("suspect", sorted(SOURCES))
def test_the_screen_keeps_every_true_source(screened, suspect):
    candidates, kept = screened[suspect]
    assert SOURCES[suspect] <= candidates
    assert SOURCES[suspect] <= kept


def test_the_screen_drops_the_unrelated_candidates(screened):
    """Not a screen otherwise: the shape filter lets whole families through."""
    unrelated = sum(len(c - SOURCES[s]) for s, (c, _) in screened.items())
    kept = sum(len(k - SOURCES[s]) for s, (_, k) in screened.items())
    assert unrelated >= 35 and kept <= 1


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
