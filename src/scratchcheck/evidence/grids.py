"""Traces of a change of precision: values that lie on a float format's grid, or on the uniform
grid of an integer quantisation, where the other model's values do not.

A difference is a conversion's rounding only if one side carries such a trace. Its size or shape
alone (small, flat-topped) is not enough: a few Adam steps move every weight by about +-lr, a
flat-topped change as small as an int8 round trip's, and a fine-tune of a bf16 model saved in bf16
sits on the bf16 grid on both sides, like its parent.
"""

from __future__ import annotations

from functools import cache

import numpy as np

BLOCK = 16  # values per block: the smallest quantisation block in use (GGUF's Q6_K, Q3_K, Q2_K)
LEVELS = 256  # an integer grid of at most 8 bits
MIN_BLOCKS = 2  # blocks with at least MIN_DISTINCT values needed before a grid is claimed (each on a
# grid by chance: below 1e-20 for floats, see docs/methods.md; two let a 32-weight output layer show it)
MIN_DISTINCT = 4
TOLERANCE = 0.02  # of a step: values sit this close to the grid (float32 arithmetic leaves ~1e-5)
EUCLID_ROUNDS = 24  # halving rounds: enough for gaps of up to 2^24 steps
ROUNDING_RELATIVE = 2.0**-8  # half a bf16 step is 2^-9 of the value; a float32 recomputation ~1e-7
ROUNDING_FILL = 0.25  # median |difference| / half a step at least this (rounding's is 0.5)
ROUNDING_MISSES = 0.01  # values allowed off a conversion's rounding (double rounding, via fp16)
GRID_HEAD = 256  # sampled values checked for a float grid before all of them are


@cache
def _formats() -> dict[str, tuple[type, int]]:
    """The coarse float formats a model is converted to: dtype and explicit mantissa bits."""
    import ml_dtypes

    return {"fp8": (ml_dtypes.float8_e4m3fn, 3), "fp16": (np.float16, 10), "bf16": (ml_dtypes.bfloat16, 7)}


def float_grids(x: np.ndarray) -> frozenset[str]:
    """The float formats (fp8 e4m3, fp16, bf16) in which every value of ``x`` is exact."""
    if not x.size or not np.all(np.isfinite(x)):
        return frozenset()
    parts = (x,) if x.size <= GRID_HEAD else (x[:GRID_HEAD], x)
    found = set()
    for name, (dtype, _) in _formats().items():
        with np.errstate(over="ignore", invalid="ignore"):
            if all(np.array_equal(part.astype(dtype).astype(np.float64), part) for part in parts):
                found.add(name)
    return frozenset(found)


def rounds_to(fine: np.ndarray, coarse: np.ndarray, grid: str) -> bool:
    """Whether ``coarse`` is ``fine`` rounded to the float format ``grid``: equal to its rounding
    (to nearest even, as every framework converts) for all but ROUNDING_MISSES of the values, and
    off it by what rounding leaves (``fills_half_steps``). A fine-tune of a model that was on the
    grid moves values elsewhere, or, saved in a wider format, by less than rounding would."""
    dtype, bits = _formats()[grid]
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = fine.astype(dtype).astype(np.float64)
    if np.count_nonzero(rounded != coarse) > ROUNDING_MISSES * fine.size:
        return False
    moved = coarse != 0
    _, exponent = np.frexp(coarse[moved])  # |coarse| in [2^(e-1), 2^e): one step is 2^(e-1-bits)
    return fills_half_steps(np.abs(fine[moved] - coarse[moved]), np.ldexp(0.5, exponent - 1 - bits))


def fills_half_steps(diff: np.ndarray, half_steps: np.ndarray) -> bool:
    """Whether the differences that are not zero spread over their half steps as rounding's do
    (uniform: a median of half of one), not far inside them (median below ROUNDING_FILL): a light
    fine-tune of a rounded model moves it by a small fraction of a step, which rounding onto the
    grid would also undo. Values already on the grid (zero difference) say nothing either way."""
    moved = diff > 0
    return bool(moved.any()) and float(np.median(diff[moved] / half_steps[moved])) >= ROUNDING_FILL


def integer_steps(runs: np.ndarray) -> np.ndarray | None:
    """The grid step of each block of BLOCK values of ``runs`` (``[k, L]``: stretches of consecutive
    elements, each starting a row; NaN for a block of fewer than MIN_DISTINCT values), if every
    block lies on a uniform grid of at most LEVELS levels (``v = step * q + offset``, integer
    ``q``), as a dequantised integer quantisation leaves them: per tensor, per row, or per block of
    any multiple of BLOCK that starts a row (GGUF, GPTQ and AWQ groups, int8 rows). None otherwise,
    or with fewer than MIN_BLOCKS informative blocks. Floats of a trained or fine-tuned model are on
    no such grid: in a block of 16, the smallest value's precision, not a common step, sets the
    spacing."""
    blocks = _blocks(runs)
    if not blocks.size or not np.all(np.isfinite(blocks)):
        return None
    steps = _block_steps(blocks)
    return steps if steps is not None and np.count_nonzero(np.isfinite(steps)) >= MIN_BLOCKS else None


def _blocks(runs: np.ndarray) -> np.ndarray:
    """``runs`` (``[k, L]``) as float64 blocks of BLOCK consecutive values, a row's tail left out."""
    whole = runs.shape[-1] - runs.shape[-1] % BLOCK
    return np.asarray(runs[..., :whole], dtype=np.float64).reshape(-1, BLOCK)


def _block_steps(blocks: np.ndarray) -> np.ndarray | None:
    """Each block's grid step (NaN where uninformative), or None if an informative block is off-grid.

    The step is the greatest common divisor of the gaps between the block's sorted values (Euclid's
    algorithm with a tolerance, on every block at once): in a block of 16 of 256 levels, no two
    values need sit one step apart."""
    values = np.sort(blocks, axis=1)
    span = values[:, -1] - values[:, 0]
    gaps = np.diff(values, axis=1)
    tie = (span * 1e-9)[:, None]  # a smaller gap is one value seen twice, not a step
    informative = 1 + np.count_nonzero(gaps > tie, axis=1) >= MIN_DISTINCT
    # On a grid of at most LEVELS levels no two distinct values are closer than span / LEVELS; in
    # a block of 16 floats some two are, in more than half the blocks. Floats stop here, cheaply.
    closest = np.where(gaps > tie, gaps, np.inf).min(axis=1)
    if np.any(informative & (closest < (1 - TOLERANCE) * span / LEVELS)):
        return None
    tolerance = span / (8 * LEVELS)  # an eighth of the finest step allowed
    step = np.where(gaps[:, 0] > tie[:, 0], gaps[:, 0], 0.0)
    for j in range(1, gaps.shape[1]):
        step = _gcd(step, np.where(gaps[:, j] > tie[:, 0], gaps[:, j], 0.0), tolerance)
    offsets = values - values[:, :1]
    with np.errstate(invalid="ignore", divide="ignore"):
        # Euclid's remainders multiply the values' rounding by the quotients: refit the step to the
        # levels it found (least squares through the first value), then check every value on it.
        levels = np.round(offsets / step[:, None])
        step = np.sum(levels * offsets, axis=1) / np.sum(levels * levels, axis=1)
        q = offsets / step[:, None]
        on = (
            (step > tolerance)
            & np.all(np.abs(q - np.round(q)) <= TOLERANCE, axis=1)
            & (span / step <= LEVELS)
        )
    if np.any(informative & ~on):
        return None
    return np.where(informative, step, np.nan)


def _gcd(x: np.ndarray, y: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """Element-wise greatest common divisor of non-negative floats, remainders below ``tolerance``
    counting as zero (Euclid with the remainder nearest zero: each round at least halves it)."""
    x, y = np.maximum(x, y), np.minimum(x, y)
    for _ in range(EUCLID_ROUNDS):
        live = y > tolerance
        if not live.any():
            break
        safe = np.where(live, y, 1.0)
        r = np.fmod(x, safe)
        r = np.minimum(r, safe - r)
        x, y = np.where(live, y, x), np.where(live, r, 0.0)
    return x


def rounds_onto(fine: np.ndarray, coarse: np.ndarray, steps: np.ndarray) -> bool:
    """Whether every value of ``coarse`` (runs on integer grids of ``steps``, one per block) is within
    half a step of ``fine``'s, the nearest level, as a round-to-nearest quantiser leaves it, and the
    differences spread over the half steps as rounding's do (``fills_half_steps``)."""
    diff = np.abs(_blocks(fine) - _blocks(coarse))
    known = np.isfinite(steps)
    half = np.broadcast_to(0.5 * steps[known, None], diff[known].shape)
    return bool(np.all(diff[known] <= (1 + 2 * TOLERANCE) * half)) and fills_half_steps(diff[known], half)


def rounding_sized(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether every ``|a - b|`` is within ``ROUNDING_RELATIVE`` of the larger magnitude: what
    rounding to any float format of 8 or more mantissa bits leaves. A fine-tune's change does not
    shrink with the weight (a weight near zero moves as far as a large one)."""
    return bool(np.all(np.abs(a - b) <= ROUNDING_RELATIVE * np.maximum(np.abs(a), np.abs(b))))
