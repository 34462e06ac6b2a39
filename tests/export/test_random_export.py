"""Hypothesis random recurrences (tests/reference/random_specs.py's generator, as
tests/runtime/test_random_recurrences.py draws it: delays 1..3, variables running backward in time,
mixed-direction cycles, contexts, one-hot labels, learned initial states, last-step equations, every
operation of the notation but relu, mse / cross_entropy / bce losses), exported to PyTorch and JAX:
graphrnn's loss and gradients to 1e-10.  Unused variables in a random spec are expected (their
warnings are filtered).

JAX compiles every new recurrence (about two seconds each here), so it sees fewer examples than PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from _export_testlib import RTOL, assert_close, jax_loss_and_grads, jax_x64, require, torch_loss_and_grads
from _rec_testlib import SETTINGS
from hypothesis import assume, given, note, reject, settings
from hypothesis import strategies as st
from reference.random_specs import Options, random_params, recurrences

import graphrnn as gr
from graphrnn.export import ExportError

pytestmark = [pytest.mark.filterwarnings("ignore::graphrnn.UnusedWarning"),
              pytest.mark.filterwarnings("ignore::graphrnn.NameWarning")]

SMOOTH = Options(relu=False, probes=True)


def _check(drawn, T, batch, seed, target):
    note(drawn.text)
    rec = gr.Recurrence(drawn.text, name="random")
    data = rec.random_inputs(T, batch=batch, seed=seed)
    for probe in drawn.probes.values():
        data[probe] = np.zeros_like(data[probe])
    params = random_params(rec, seed)
    run = rec.run(data, params=params, T=T)
    assume(np.isfinite(run.loss) and abs(run.loss) < 1e6)
    if "mixed" in drawn.constructs:
        # a cycle read both from the past and from the future is no loop or scan: a clear error, and the
        # example does not count (hypothesis draws another, so the comparisons keep their number)
        with pytest.raises(ExportError, match=r"the variables a, b read each other .* mixed-order block"):
            _compare(rec, data, params, run, target)
        reject()
    _compare(rec, data, params, run, target)


def _compare(rec, data, params, run, target):
    """_export_testlib.compare, with an absolute floor of 1e-14 times the largest gradient: a gradient that is
    zero in exact arithmetic (log_softmax of a single row) is exactly zero in graphrnn and rounding noise
    (1e-20) in JAX, which compare's floor of 1e-300 counts as a relative error of 1e280."""
    export = gr.export.to_torch if target == "torch" else gr.export.to_jax
    how = torch_loss_and_grads if target == "torch" else jax_loss_and_grads
    loss, grads = how(export(rec, "teacher"), params, data, run.T)
    assert_close(f"{target} loss", loss, run.loss)
    assert set(grads) == set(params)
    floor = 1e-14 * max([1.0] + [float(np.abs(run.grads[n]).max()) for n in params if np.size(run.grads[n])])
    for name in params:
        err = float(np.abs(np.asarray(grads[name]) - run.grads[name]).max())
        assert err <= RTOL * float(np.abs(run.grads[name]).max()) + floor, f"{target} d loss / d {name}: {err:.3g}"


@SETTINGS
@given(recurrences(SMOOTH), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_export_to_torch(drawn, T, batch, seed):
    require("torch")
    _check(drawn, T, batch, seed, "torch")


@settings(SETTINGS, max_examples=10)
@given(recurrences(SMOOTH), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_export_to_jax(drawn, T, batch, seed):
    jax_x64()
    _check(drawn, T, batch, seed, "jax")
