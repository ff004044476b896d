import subprocess
import sys

import scratchcheck


def test_public_api_is_curated_and_sorted():
    assert scratchcheck.__all__ == sorted(scratchcheck.__all__)
    for name in scratchcheck.__all__:
        assert hasattr(scratchcheck, name), name
    assert callable(scratchcheck.compare)


def test_compare_stays_the_function_after_its_module_is_imported():
    import scratchcheck.compare  # noqa: F401 - the import is the point

    assert callable(scratchcheck.compare)


def test_import_does_not_drag_in_the_cli_reports_or_scipy():
    code = "import sys, scratchcheck; print(sorted(m for m in ('scipy', 'click', 'rich', 'jinja2', 'onnx', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_vector_test_and_its_combination_need_no_scipy():
    """The t and normal tails and Fisher's combination come from the math module: scipy.special
    alone costs about half a second of import on every comparison."""
    code = (
        "import sys; from scratchcheck.evidence import stats; "
        "e = stats.coordinate_test(0.3, 500, vector=True); stats.fisher_combine([e.log_p, -3.0]); "
        "print(sorted(m for m in sys.modules if m.startswith('scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
