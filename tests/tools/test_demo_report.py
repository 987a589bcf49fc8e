"""The demo summary's baseline row says why it has no figure instead of disappearing."""
import sys

from tools.demo_report import baseline_accuracy


def test_baseline_row_without_scikit_learn_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)   # import sklearn now raises ImportError
    assert baseline_accuracy(str(tmp_path)) == (
        None, "not run: needs scikit-learn (pip install -r requirements-test.txt)")


def test_baseline_row_when_the_baseline_script_fails_names_the_error(tmp_path):
    figure, why_not = baseline_accuracy(str(tmp_path))   # no task_data/ there
    assert figure is None and why_not.startswith("failed (exit 2): error: ")
    assert "task_data" in why_not
