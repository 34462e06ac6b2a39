"""Under CI=true a missing browser fails the explorer's browser tests (elsewhere they are skipped, saying why)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_without_a_browser(ci: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(Path(sys.executable).parent)  # python, but no chromium and no chromedriver
    env["PYTHONPATH"] = str(ROOT)
    env["CI"] = ci
    test = "tests/explore/test_browser.py::test_stepping_back_to_h1_shows_the_gradient_norm_run_grads_holds"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_missing_browser_fails_the_run_under_ci():
    done = _run_without_a_browser("true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout and " skipped" not in done.stdout.splitlines()[-1]
    assert "no chromium (or chromedriver) on the PATH" in done.stdout
