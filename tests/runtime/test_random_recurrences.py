"""Random valid recurrences (hypothesis) against finite differences.

The specs are tests/reference/random_specs.py's (the generator the reference interpreter and the
derivation are checked on), drawn with ``Options(relu=False, probes=True)``: one to three per-step
variables over the whole notation (``+ - * / ** @ .T``, gates, tanh, sigmoid, exp of bounded values,
log of sigmoid, softmax, log_softmax; no relu, whose kink is no place for finite differences), delays
of 1..3, variables running backwards in time, mixed-direction cycles, contexts, one-hot labels fed
back, zero or learned initial values, a last-step equation ``q[tau]`` with its own loss ``E``, and a
loss of mse / cross_entropy / bce_with_logits.  Every computed variable's equation ends in
``+ probe_v[t]`` (``probe_q[tau]``), an input whose data is set to zero here, so that dL/dv[t] can be
checked by finite differences too.

Random specs may leave variables no loss depends on: graphrnn warns about them (``UnusedWarning``,
``NameWarning``), which is expected here and filtered.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from _rec_testlib import SETTINGS, assert_grad_close, numerical_gradient
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from reference.random_specs import Options, random_params, recurrences

import graphrnn as gr

pytestmark = [pytest.mark.filterwarnings("ignore::graphrnn.UnusedWarning"),
              pytest.mark.filterwarnings("ignore::graphrnn.NameWarning")]

#: what a finite-difference test needs: no relu, a zero-data probe input on every computed variable
SMOOTH = Options(relu=False, probes=True)


def _setup(drawn, T, batch, seed):
    """The recurrence of a drawn spec, its data (the probes zero) and its parameters."""
    rec = gr.Recurrence(drawn.text, name="random")
    data = rec.random_inputs(T, batch=batch, seed=seed)
    for probe in drawn.probes.values():
        data[probe] = np.zeros_like(data[probe])
    return rec, data, random_params(rec, seed)


@SETTINGS
@given(recurrences(SMOOTH), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_match_finite_differences(drawn, T, batch, seed):
    note(drawn.text)
    rec, data, params = _setup(drawn, T, batch, seed)
    # the spec is valid: it unrolls into a DAG whose order is topological
    un = rec.unroll(T)
    assert nx.is_directed_acyclic_graph(un)
    position = {n: i for i, n in enumerate(un.order)}
    assert all(position[u] < position[v] for u, v in un.edges if u in position and v in position)

    run = rec.run(data, params=params, T=T)
    assume(np.isfinite(run.loss) and abs(run.loss) < 1e6)

    def loss():
        return rec.run(data, params=params, T=T, backward=False).loss

    scale = 1e-6 * (1 + abs(run.loss))
    for pname, value in params.items():
        numeric = numerical_gradient(loss, value)
        assert_grad_close(run.grads[pname], numeric, f"dL/d{pname}", atol=scale, rtol=1e-5)
    assert drawn.probes, drawn.text
    for name, probe in drawn.probes.items():
        numeric = numerical_gradient(loss, data[probe])
        # a tau-anchored variable (q[tau]) exists at the last step only: its probe matters there only
        steps = [T] if f"\n{name}[tau] =" in drawn.text else range(1, T + 1)
        for t in range(1, T + 1):
            if t in steps:
                assert_grad_close(run.grads[f"{name}[{t}]"], numeric[t - 1], f"dL/d{name}[{t}]", atol=scale,
                                  rtol=1e-5)
            else:
                assert np.abs(numeric[t - 1]).max() <= scale, f"{probe}[{t}] is read only at tau"
    # the dummy copies add up to the totals
    for pname, per_step in run.copy_grads.items():
        np.testing.assert_allclose(sum(per_step.values()), run.grads[pname], rtol=1e-10, atol=1e-12)
    # the fast path (no copies: non-recurrent variables computed for all steps at once) agrees
    # (through a compiled program when the recurrence allows one, and on the engine)
    from graphrnn.runtime import runner

    for compiled in (True, False):
        runner.PROGRAM = compiled
        try:
            fast = rec.run(data, params=params, T=T, copies=False)
        finally:
            runner.PROGRAM = True
        assert fast.loss == pytest.approx(run.loss, rel=1e-12, abs=1e-12)
        assert set(fast.grads) == set(run.grads)
        for key in run.grads:
            np.testing.assert_allclose(fast.grads[key], run.grads[key], rtol=1e-10, atol=1e-12, err_msg=key)
        for key in run.values:
            np.testing.assert_allclose(fast.values[key], run.values[key], rtol=1e-10, atol=1e-12, err_msg=key)


@settings(SETTINGS, max_examples=40)
@given(recurrences(SMOOTH))
def test_random_recurrences_are_valid_and_describe_themselves(drawn):
    """The generator only makes valid specs: they parse, infer every shape, and each
    generated parameter gets the shape its uses imply."""
    rec = gr.Recurrence(drawn.text)
    assert rec.losses in (["L"], ["L", "E"])
    assert all(name.startswith("P") for name in rec.param_shapes)
    for name, var in rec.variables.items():
        if var.kind == "computed" and name not in rec.losses:
            assert len(var.shape) == 2 and var.shape[1] == "B", name
    assert set(drawn.probes.values()) <= {n for n, v in rec.variables.items() if v.kind == "input"}
    assert "parameters:" in rec.describe()
    for u, v, d in rec.folded.edges(data=True):
        assert d["delay"] in range(-3, 4)


def test_the_generator_reaches_every_construct():
    """The strategy is not too narrow: over a few hundred draws, every construct appears (and relu never)."""
    seen: set[str] = set()

    @settings(SETTINGS, max_examples=300)
    @given(recurrences(SMOOTH))
    def collect(drawn):
        assert "relu(" not in drawn.text
        seen.update(drawn.constructs)
        for needle in (".T @", "exp(tanh(", "log(sigmoid(", "softmax(", "log_softmax(", " ** ", " / ", "[t+",
                       "[t-3]", "= learned", "cross_entropy(", "bce_with_logits(", "mse(", "probe_q[tau]"):
            if needle in drawn.text:
                seen.add(needle)

    collect()
    wanted = {".T @", "exp(tanh(", "log(sigmoid(", "softmax(", "log_softmax(", " ** ", " / ", "[t+", "[t-3]",
              "= learned", "cross_entropy(", "bce_with_logits(", "mse(", "probe_q[tau]", "delay>1", "backward",
              "gate", "tau", "tau-k", "tau+k", "learned", "context", "one_hot", "feedback", "mixed"}
    assert wanted <= seen, wanted - seen


PARAMETER_FREE = """
input x: 2
target z: 2
state g: 2
state h: 2
g[t] = tanh(x[t])
h[t] = tanh(W @ g[t-1])
L[t] = mse(h[t], z[t])
"""


def test_parameter_free_variables_get_their_gradients():
    rec = gr.Recurrence(PARAMETER_FREE)
    data = rec.random_inputs(3, batch=1, seed=1)
    run = rec.run(data, T=3)
    # dL/dg[1] = Wᵀ (diag(1 - h[2]²) dL/dh[2]), which is not zero
    h2 = run.values["h[2]"]
    expected = run.values["W"].T @ ((1 - h2 ** 2) * run.grads["h[2]"])
    assert np.abs(expected).max() > 1e-6
    np.testing.assert_allclose(run.grads["g[1]"], expected, atol=1e-12)


def test_a_loss_without_parameters_can_be_run_with_backward():
    rec = gr.Recurrence("input x: 2\ntarget z: 2\nh[t] = tanh(x[t])\nL[t] = mse(h[t], z[t])\n")
    assert rec.param_shapes == {}
    run = rec.run(rec.random_inputs(2), T=2)
    assert np.isfinite(run.loss)
