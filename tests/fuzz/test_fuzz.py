"""The short fuzzing run, part of every ``pytest``: a few hundred mutated files across the formats,
each read in a child capped at 4 GiB and 20 s, must read or fail with one line naming the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.draw import HypothesisDraw
from fuzz.harness import Fuzzer
from fuzz.seeds import FORMATS

CASES_PER_FORMAT = 36


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    fuzzer = Fuzzer(Path(tmp_path_factory.mktemp("fuzz")))
    yield fuzzer
    fuzzer.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_files_read_or_fail_with_one_line(fuzzer: Fuzzer, fmt: str) -> None:
    @settings(
        max_examples=CASES_PER_FORMAT,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def case(data: st.DataObject) -> None:
        outcome = fuzzer.run(fmt, HypothesisDraw(data))
        assert outcome.ok, f"{outcome.kind}: {outcome.message}"

    case()
