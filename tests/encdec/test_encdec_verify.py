"""The step check of an encoder-decoder run: passes on every variant, and catches a wrong gradient."""

import doctest

import numpy as np
import pytest

import graphrnn.recurrence.encdec as notation
import graphrnn.runtime.encdec as runtime
import graphrnn.verify.encdec as verify
from graphrnn.recurrence.encdec import load, names
from graphrnn.runtime.encdec import run_encdec
from graphrnn.verify.encdec import check_encdec


@pytest.mark.parametrize("name", names())
def test_every_gradient_of_every_variant_agrees_with_differences(name):
    model = load(name, sizes={"H": 3})
    report = check_encdec(run_encdec(model, model.random_inputs((4, 3), batch=2, seed=3), model.init_params(seed=4)))
    assert report.ok, report.text()
    quantities = [r.quantity for r in report.rows]
    assert "∇C" in quantities and "∇enc.h[1]" in quantities and "∇enc.W^(4)" in quantities
    assert quantities.index("∇dec.s[1]") < quantities.index("∇C") < quantities.index("∇enc.h[4]")


def test_a_wrong_encoder_gradient_is_caught_where_it_goes_wrong():
    model = load("fig10_12", sizes={"H": 3})
    got = run_encdec(model, model.random_inputs((4, 3), batch=2, seed=3))
    got.grads["enc.h[2]"] = got.grads["enc.h[2]"] * 1.01
    got.grads["C"] = got.grads["C"].copy()
    report = check_encdec(got)
    assert not report.ok and report.first_failure.quantity == "∇enc.h[2]"
    assert "FAIL" in report.text()


@pytest.mark.parametrize("module", [notation, runtime, verify])
def test_the_docstring_examples_hold(module):
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failed == 0
