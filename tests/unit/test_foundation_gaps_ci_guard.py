"""The suite's CI guard: with CI=true a skipped PostgreSQL variant fails the run and is listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request):
    return request.param


def test_runs_everywhere(database_url):
    assert database_url


def test_skips_on_postgresql(database_url):
    if database_url == "postgresql":
        pytest.skip("no hay servidor")


def test_skips_on_sqlite(database_url):
    if database_url == "sqlite":
        pytest.skip("solo PostgreSQL")


@pytest.mark.xfail(reason="conocido", strict=True)
def test_expected_failure(database_url):
    raise AssertionError
"""


@pytest.fixture
def sample(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copy(REPO / "tests" / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_sample=SAMPLE)
    return pytester


def run(sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    return sample.runpytest_subprocess("-p", "no:cacheprovider", "-q")


def test_a_skipped_postgresql_variant_fails_the_run_in_ci_and_is_listed(
    sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(sample, monkeypatch, "true")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=4, skipped=2, xfailed=2)
    out = result.stdout.str()
    assert "PostgreSQL tests skipped (CI fails because of them)" in out
    assert "test_sample.py::test_skips_on_postgresql[postgresql]: Skipped: no hay servidor" in out
    assert "test_skips_on_sqlite[sqlite]" not in out.split("PostgreSQL tests skipped")[1]
    assert "test_expected_failure" not in out.split("PostgreSQL tests skipped")[1]


def test_outside_ci_the_skips_are_listed_but_the_run_passes(
    sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(sample, monkeypatch, None)
    assert result.ret == pytest.ExitCode.OK
    assert "test_skips_on_postgresql[postgresql]: Skipped: no hay servidor" in result.stdout.str()


def test_in_ci_a_run_without_postgresql_skips_passes(sample: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("CI", "true")
    result = sample.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-k", "not skips_on_postgresql")
    assert result.ret == pytest.ExitCode.OK
    assert "PostgreSQL tests skipped" not in result.stdout.str()
