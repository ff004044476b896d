"""Fixtures of the report tests; the builders live in ``report_builders`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_builders import large_report, vlm_report  # noqa: E402

from scratchcheck.results import ComparisonReport  # noqa: E402


@pytest.fixture
def report() -> ComparisonReport:
    return vlm_report()


@pytest.fixture
def big_report() -> ComparisonReport:
    return large_report()
