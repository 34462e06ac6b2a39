"""The derivative table: every entry is exercised, and one entry 1% wrong is caught."""

from __future__ import annotations

import doctest
import importlib

import pytest
from _derive_testlib import mismatches

import graphrnn as gr
from graphrnn.derive import rules
from graphrnn.derive.rules import NONE, RULES
from graphrnn.derive.symbols import scale

#: one recurrence that uses every differentiable op of the notation, each operand slot with a gradient
ALL_OPS = """
input  x: 3
target y: class 3
state  h: 3 = zero
state  g: 3 = learned
loss   L
h[t] = tanh(b + W @ h[t-1] + U @ x[t]) * sigmoid(P.T @ g[t-1]) - relu(+h[t-1]) / (2.0 + exp(g[t-1]))
g[t] = log(sigmoid(Q @ h[t])) + softmax(h[t]) ** 2 - log_softmax(-g[t-1])
L[t] = cross_entropy(h[t], y[t]) + mse(h[t], g[t]) + bce_with_logits(g[t], sigmoid(h[t]))
"""

#: (op, operand slot) of every rule that passes a gradient
SLOTS = [("+", 0), ("+", 1), ("-", 0), ("-", 1), ("*", 0), ("*", 1), ("/", 0), ("/", 1), ("@", 0), ("@", 1),
         ("neg", 0), ("pos", 0), ("**", 0), ("T", 0), ("tanh", 0), ("sigmoid", 0), ("relu", 0), ("exp", 0),
         ("log", 0), ("softmax", 0), ("log_softmax", 0), ("cross_entropy", 0), ("mse", 0), ("mse", 1),
         ("bce_with_logits", 0), ("bce_with_logits", 1)]


def _run():
    rec = gr.Recurrence(ALL_OPS, name="all_ops")
    run = rec.run(rec.random_inputs(3, batch=2, seed=4), params=rec.init_params(seed=5), T=3)
    return rec, run


def test_the_table_has_a_rule_for_every_function_of_the_notation():
    from graphrnn.recurrence.spec import FUNCTIONS

    assert set(FUNCTIONS) <= set(RULES)
    assert {op for op, _ in SLOTS} | {"one_hot", "argmax", "sample", "feed"} == set(RULES)


def test_the_all_ops_recurrence_is_right_as_written():
    rec, run = _run()
    assert mismatches(run, rec.derive().evaluate(run)) == []


@pytest.mark.parametrize("op,slot", SLOTS)
def test_one_entry_one_percent_wrong_is_caught(monkeypatch, op, slot):
    right = RULES[op]

    def wrong(args, out, g, info):
        got = list(right(args, out, g, info))
        assert got[slot] is not NONE
        got[slot] = scale(1.01, got[slot])
        return tuple(got)

    monkeypatch.setitem(RULES, op, wrong)
    rec, run = _run()
    assert mismatches(run, rec.derive().evaluate(run)) != []


@pytest.mark.parametrize("module", ["__init__", "symbols", "rules", "derivation", "printing", "numeric"])
def test_the_docstring_examples_run(module):
    mod = importlib.import_module("graphrnn.derive" + ("" if module == "__init__" else f".{module}"))
    failures, tried = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


def test_no_gradient_ops_pass_none():
    for op in ("one_hot", "argmax", "sample", "feed"):
        assert all(g is NONE for g in RULES[op]([object()], None, None, None))
    assert rules.NO_GRADIENT_REASONS.keys() == {"one_hot", "argmax", "sample", "feed"}
