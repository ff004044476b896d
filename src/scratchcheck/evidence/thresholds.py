"""Every threshold a verdict or a report uses, defined once (docs/methods.md states each rule)."""

from __future__ import annotations

# -- significance ---------------------------------------------------------------------------------
ALPHA_DERIVED = 1e-6  # family-wise p (after Holm) below which a component is called derived
ALPHA_SOME = 1e-3  # below this, some evidence that is not enough: inconclusive
# Locating the evidence inside a component already called derived: a layer or tensor group is
# derived at this family-wise level (Holm over the component's groups). The component-level claim
# is made at ALPHA_DERIVED; this only says where in it the evidence lies.
ALPHA_LOCATE = 1e-3

# -- power ----------------------------------------------------------------------------------------
MAX_DETECTABLE_R = 0.5  # "independent" only if a common |r| this small would have been detected

# -- identity within conversion error -------------------------------------------------------------
IDENTICAL_PEARSON = 0.99  # every tensor at least this close (bf16 rounding costs norm gains some r)
IDENTICAL_REL_L2 = 1e-2  # ... and within 1% in L2 (bf16, fp16, 8-bit round trips)
IDENTICAL_SHARE = 0.99  # the whole model is headlined identical only above this share of parameters

# -- spread: a derived verdict must not rest on a handful of tensors -------------------------------
SPREAD_LEAVE_OUT = 0.1  # the strongest tenth of the tensors (at least one) is left out and the
# combined test must still pass the derived threshold ...
SPREAD_MIN_SHARE = 0.01  # ... and the tensors that are significant alone must hold at least 1% of
# the compared parameters

# -- what readers misread -------------------------------------------------------------------------
TRAP_COSINE = 0.9  # raw cosine a reader would call "similar" ...
TRAP_PEARSON = 0.5  # ... while the centred metric says otherwise
UNINFORMATIVE_COSINE = 0.5  # raw cosine expected with no correspondence at all above this: shown, not used
LOW_COVERAGE = 0.5  # below this share of a component's parameters, its verdict speaks for a part only
WEAK_SIGNAL_R = 0.05  # a derived verdict on a median |r| below this gets a warning

# -- kinds of derivation --------------------------------------------------------------------------
NOISE_SCALE_CV = 0.1  # a noised copy changes every matrix by the same relative amount (fine-tunes: 0.2+)
PERMUTED_IDENTITY = 0.5  # matched units mostly off their index: a permuted copy
NOISE_KURTOSIS = (2.6, 3.6)
NOISE_DELTA_CORR = 0.1  # a noised copy's change is uncorrelated with the weights

# -- tests ----------------------------------------------------------------------------------------
MIN_LAYERS = 4  # the layer-diagonal test needs 4! = 24 orderings to reach p < 0.05
