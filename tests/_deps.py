"""The tests' optional dependencies: a missing one skips locally and fails under ``CI=true``.

The references some tests compare against (PyTorch, JAX, matplotlib, the notebook kernel,
graphviz's ``dot``) are installed by the README's test command (``bash dev test`` installs
the ``test`` extra).  A comparison that silently skips in CI checks nothing, so::

    torch = require("torch")            # at module level or inside a test
    @needs_dot                          # a test that lays a drawing out with dot
    def test_png(...): ...

skip with the reason on a developer's machine that lacks the dependency, and fail the run
when the environment variable ``CI`` is ``true`` (as GitHub Actions, GitLab CI and most
others set it).
"""

from __future__ import annotations

import importlib
import os
import shutil

import pytest

#: how to get each dependency; the test extra of pyproject.toml holds the Python ones
INSTALL = {
    "dot": "install graphviz (apt-get install graphviz, brew install graphviz)",
}
DEFAULT_INSTALL = "install the test dependencies: pip install -e '.[test]' (or run `bash dev test`)"


def in_ci() -> bool:
    """Whether the tests run under continuous integration (``CI=true``, or ``1``/``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, why: str = "") -> None:
    """Skip (locally) or fail (under ``CI=true``) because ``what`` is not available."""
    how = INSTALL.get(what, DEFAULT_INSTALL)
    message = f"{what} is not available{': ' + why if why else ''}; {how}"
    if in_ci():
        pytest.fail(f"CI=true: {message}. In CI a reference check must run, not be skipped", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(module: str):
    """Import and return ``module``; without it skip locally, fail under ``CI=true``.

    >>> require("numpy").__name__
    'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(module, f"import {module} failed ({exc})")


def require_program(name: str) -> str:
    """The path of program ``name`` on the PATH; without it skip locally, fail under ``CI=true``."""
    path = shutil.which(name)
    if path is None:
        missing(name, f"the program {name!r} is not on the PATH")
    return path


#: marks a test that needs graphviz's dot program (see the ``dot_program`` fixture in conftest.py)
needs_dot = pytest.mark.usefixtures("dot_program")
