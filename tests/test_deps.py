"""The optional-dependency rule of tests/_deps.py: skip locally, fail under ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _deps import in_ci, require, require_program

REPO = Path(__file__).resolve().parents[1]
ABSENT = "graphrnn_no_such_module_for_the_test"


@pytest.mark.parametrize("value, ci", [("true", True), ("TRUE", True), ("1", True), ("", False), ("false", False)])
def test_ci_is_read_from_the_environment(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_missing_module_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true: {ABSENT} is not available"):
        require(ABSENT)


def test_a_missing_module_skips_with_its_reason_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{ABSENT} is not available.*pip install"):
        require(ABSENT)


def test_a_missing_program_fails_under_ci_and_skips_outside(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not on the PATH"):
        require_program("graphrnn-no-such-program")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not on the PATH"):
        require_program("graphrnn-no-such-program")


def test_present_dependencies_are_returned(monkeypatch):
    assert require("numpy").__name__ == "numpy"
    here = Path(sys.executable)
    monkeypatch.setenv("PATH", f"{here.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    assert Path(require_program(here.name)).name == here.name


def test_the_torch_comparisons_fail_under_ci_without_torch(tmp_path):
    """End to end: the PyTorch comparisons, run with torch made unimportable and CI=true, fail
    the run (an error while collecting), where pytest.importorskip would skip."""
    block = ("import sys; sys.modules['torch'] = None; import pytest; "
             "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests/engine/test_against_torch.py']))")
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", block], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode not in (0, 5), done.stdout[-2000:]  # 5: nothing collected
    assert "CI=true: torch is not available" in done.stdout, done.stdout[-2000:]


def test_every_required_module_is_installed_by_the_test_command():
    """Each ``require("X")`` of the tests names a package of pyproject's ``test`` extra, which the
    README's test command (``bash dev test``) installs: so CI has it, and the rule above never fires there."""
    import re
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    installed = {re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower() for req in extra["test"]}
    required = set()
    for path in (REPO / "tests").rglob("*.py"):
        if path.name not in ("_deps.py", "test_deps.py"):  # the helper and its own tests
            required |= set(re.findall(r"""\brequire\(["']([\w.]+)["']\)""", path.read_text(encoding="utf-8")))
    assert {"torch", "matplotlib", "nbformat", "nbclient", "ipykernel"} <= required
    assert required <= installed, f"add {sorted(required - installed)} to the test extra of pyproject.toml"
