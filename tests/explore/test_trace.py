"""The numbers behind the page: the passes' orders, the dummy copies, and the checks (which can fail)."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.explore import MAX_STEPS, ExploreError, explore
from graphrnn.explore.trace import Check, build_trace


@pytest.fixture(scope="module")
def trace():
    return build_trace(gr.load("fig10_3"), steps=4, batch=3, seed=2)


def test_the_forward_pass_follows_the_evaluation_order_and_the_backward_pass_reverses_it(trace):
    assert trace.forward == list(trace.rec.unroll(4).order)
    assert trace.backward == trace.forward[::-1]
    assert trace.backward[0] == "L[4]" and trace.backward[-1] == "h[1]"
    # the backward order is a reverse topological order: every consumer of a node comes before it
    at = {k: i for i, k in enumerate(trace.backward)}
    for k in trace.forward:
        for i in trace.inputs_of[k]:
            if i in at:
                assert at[k] < at[i], (k, i)


def test_the_run_is_the_public_one_on_the_seeded_data(trace):
    rec = trace.rec
    again = rec.run(rec.random_inputs(4, batch=3, seed=2), params=rec.init_params(seed=2))
    assert again.loss == trace.run.loss
    for k in trace.backward:
        np.testing.assert_array_equal(trace.run.grads[k], again.grads[k])


def test_each_dummy_copy_is_completed_by_the_node_whose_equation_uses_it(trace):
    assert sorted(trace.received["h[3]"]) == [("U", 3), ("W", 3), ("b", 3)]
    assert sorted(trace.received["o[2]"]) == [("V", 2), ("c", 2)]
    assert trace.received["L[4]"] == []
    got = sorted(pt for pts in trace.received.values() for pt in pts)
    want = sorted((p, t) for p, per in trace.run.copy_grads.items() for t in per)
    assert got == want  # every copy exactly once


def test_every_entry_checked_agrees_with_finite_differences(trace):
    checks = trace.all_checks()
    assert len(trace.checks) == len(trace.backward)
    assert len(trace.copy_checks) == 5 * 4 and len(trace.param_checks) == 5
    assert all(c.ok for c in checks)
    c = trace.checks["h[2]"]
    g = trace.run.grads["h[2]"]
    assert c.engine == g[c.entry] and abs(g[c.entry]) == np.abs(g).max()  # the largest entry
    assert abs(c.fd - c.engine) < 1e-8


def test_a_check_fails_when_the_engine_is_off_by_one_percent(trace):
    c = trace.checks["h[1]"]
    assert Check(c.key, c.entry, c.engine * 1.01, c.fd).ok is False
    assert Check(c.key, c.entry, c.engine, c.fd, derived=c.engine * 1.01).ok is False
    assert Check(c.key, c.entry, c.engine, c.fd, derived=c.engine).ok is True


def test_a_wrong_gradient_rule_in_the_engine_is_caught(wrong_rule):
    wrong_rule("tanh", lambda g, out, args, need, saved, attrs: (g * 1.01,))
    tr = build_trace(gr.load("fig10_3"), steps=3, batch=1)
    bad = [k for k, c in tr.checks.items() if not c.ok]
    assert "h[1]" in bad and "o[3]" not in bad  # before tanh: wrong; after it: right


def test_too_many_steps_is_a_clear_error():
    with pytest.raises(ExploreError, match=rf"steps = {MAX_STEPS + 1} is too many .* at most {MAX_STEPS} steps"):
        explore(gr.load("fig10_3"), steps=MAX_STEPS + 1)
    assert MAX_STEPS == 50


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps must be a whole number of at least 1"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"batch": 0}, "batch must be a whole number of at least 1"),
    ({"seed": "x"}, "seed must be a whole number"),
])
def test_bad_options_are_clear_errors(kwargs, match):
    with pytest.raises(ExploreError, match=match):
        explore(gr.load("fig10_3"), **kwargs)


def test_a_spec_without_a_loss_says_what_to_add():
    with pytest.raises(ExploreError, match="fig10_2 has no loss.*loss L"):
        explore("fig10_2")


def test_a_zoo_name_and_sizes_are_accepted():
    page = explore("fig10_3", steps=2, batch=1, sizes={"H": 3})
    assert page.trace.run.values["h[1]"].shape == (3, 1) and page.ok
    with pytest.raises(ExploreError, match="sizes= applies when the architecture is given by name"):
        explore(gr.load("fig10_3"), sizes={"H": 3})


def test_the_longest_unroll_allowed_is_checked_too():
    tr = build_trace(gr.load("fig10_3", sizes={"H": 3}), steps=MAX_STEPS, batch=1)
    assert len(tr.forward) == 3 * MAX_STEPS and all(c.ok for c in tr.all_checks())
