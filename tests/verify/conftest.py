"""Helpers for the verify tests: swap an op's gradient rule for a wrong one, and put it back."""

from __future__ import annotations

import dataclasses

import pytest

from graphrnn.engine import functional, ops, tensor


@pytest.fixture
def wrong_rule(monkeypatch):
    """``wrong_rule("tanh", vjp)`` replaces the VJP of a registered op for the test's duration.

    The op functions look most ops up in ``REGISTRY`` at call time; the few cached in
    module globals (``_ADD``, ``_MATMUL``, ...) are patched there too.
    """

    def install(name: str, vjp):
        op = dataclasses.replace(ops.REGISTRY[name], vjp=vjp)
        monkeypatch.setitem(ops.REGISTRY, name, op)
        for module in (functional, tensor):
            for attr, value in vars(module).items():
                if attr.startswith("_") and isinstance(value, ops.Op) and value.name == name:
                    monkeypatch.setattr(module, attr, op)
        return op

    return install
