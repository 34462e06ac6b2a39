"""The docstring examples of graphrnn.explore run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["graphrnn.explore", "graphrnn.explore.trace", "graphrnn.explore.page",
                                    "graphrnn.explore.drawing", "graphrnn.explore.equations",
                                    "graphrnn.explore.browser"])
def test_the_docstring_examples_run(module):
    failures, tried = doctest.testmod(importlib.import_module(module))
    assert tried > 0 and failures == 0
