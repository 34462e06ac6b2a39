"""The docstring examples of graphrnn.verify run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["graphrnn.verify", "graphrnn.verify.check", "graphrnn.verify.book",
                                    "graphrnn.verify.export", "graphrnn.verify.perturb"])
def test_the_docstring_examples_run(module):
    failures, tried = doctest.testmod(importlib.import_module(module))
    assert tried > 0 and failures == 0
