"""Fixtures of the audit tests: each miniature compared once; the builders live in ``audit_builders``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from audit_builders import Case, compared, hcx_models, solar_models, unrelated_shape_models  # noqa: E402


@pytest.fixture(scope="session")
def hcx(tmp_path_factory) -> Case:
    return compared(tmp_path_factory.mktemp("hcx"), hcx_models)


@pytest.fixture(scope="session")
def solar(tmp_path_factory) -> Case:
    return compared(tmp_path_factory.mktemp("solar"), solar_models)


@pytest.fixture(scope="session")
def unrelated_shapes(tmp_path_factory) -> Case:
    return compared(tmp_path_factory.mktemp("unrelated"), unrelated_shape_models)
