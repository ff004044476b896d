"""Where the mutators' choices come from: hypothesis (shrinkable, in pytest) or a seeded ``random``
(the long run, which counts outcomes instead of stopping at the first failure)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Numbers that break size arithmetic: zero, sign and width boundaries, "a lot", a 4 GB memo index.
INTERESTING = (
    0,
    1,
    -1,
    7,
    60000,
    0x0FFFFFFF,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    10**10,
    2**62,
    2**63 - 1,
    2**63,
    2**64 - 1,
)


class Draw(Protocol):
    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


def interesting(draw: Draw, low: int = -(2**63), high: int = 2**64 - 1) -> int:
    """A boundary number (or a small one) within ``[low, high]``."""
    options = [v for v in INTERESTING if low <= v <= high] or [low]
    return draw.choice(options) if draw.integer(0, 3) else draw.integer(max(low, -4), min(high, 64))


def chance(draw: Draw, one_in: int) -> bool:
    return draw.integer(1, one_in) == 1


class RandomDraw:
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._random.randrange(len(options))]


class HypothesisDraw:
    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data, self._st = data, st

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(self._st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self._data.draw(self._st.sampled_from(list(options)))
