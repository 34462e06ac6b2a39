"""The examples in graphrnn.export's docstrings run as written."""

from __future__ import annotations

import doctest

import pytest

from graphrnn import export
from graphrnn.export import ir, printer


@pytest.mark.parametrize("module", [export, ir, printer])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
