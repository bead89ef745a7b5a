"""The cell-skipping rule shared by the test run (conftest.py) and the docs build (docs/build.py)."""
from conftest import skip_reason


def test_eval_false_is_skipped():
    assert skip_reason("#| eval: false\nrun_everything()") == "#| eval: false"
    assert skip_reason("#|eval:false\nx = 1") == "#| eval: false"
    assert skip_reason("#| export\ndef f(): pass") is None
    assert skip_reason("x = 1  # eval: false in a comment is not a directive") is None


def test_slow_runs_only_when_enabled(monkeypatch):
    monkeypatch.delenv("MINIMIND_TEST_FLAGS", raising=False)
    assert skip_reason("#| slow\ntrain()").startswith("#| slow")
    monkeypatch.setenv("MINIMIND_TEST_FLAGS", "slow")
    assert skip_reason("#| slow\ntrain()") is None
