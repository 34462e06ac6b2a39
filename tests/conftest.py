"""Shared by every test: the optional-dependency helper (``_deps``) on the import path, and the
``dot_program`` fixture behind ``_deps.needs_dot``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _deps import require_program  # noqa: E402


@pytest.fixture
def dot_program() -> str:
    """graphviz's ``dot``: skips the test without it, fails it under ``CI=true``."""
    return require_program("dot")
