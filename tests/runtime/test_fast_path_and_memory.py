"""The fast path (copies=False), checkpointed and truncated BPTT give the exact gradients.

Every fast path is checked against the plain step-by-step evaluation with dummy
copies, entry by entry, relative to the largest entry (the benchmark's measure).
"""

import numpy as np
import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.recurrence.spec import references

WITH_LOSS = [n for n in zoo.names() if gr.load(n).losses]


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def modes(rec):
    return ["teacher", "free", "scheduled"] if rec.spec.feedbacks else ["teacher"]


@pytest.fixture(params=["program", "engine nodes"])
def recurrent_blocks(request, monkeypatch):
    """The fast path runs a compiled program (program.py) when it can; otherwise engine nodes
    step by step without dummy copies (the taped strategy): check both ways."""
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "PROGRAM", request.param == "program")
    return request.param


@pytest.mark.parametrize("arch", WITH_LOSS)
def test_fast_path_matches_step_by_step(arch, recurrent_blocks):
    rec = gr.load(arch)
    data, params = rec.random_inputs(7, batch=3, seed=2), rec.init_params(seed=1)
    for mode in modes(rec):
        slow = rec.run(data, params, mode=mode)
        fast = rec.run(data, params, mode=mode, copies=False)
        assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
        assert fast.step_losses == pytest.approx(slow.step_losses, rel=1e-12)
        for name, g in slow.grads.items():
            assert rel(fast.grads[name], g) < 1e-12, (mode, name)
        for name, v in slow.values.items():
            np.testing.assert_allclose(fast.values[name], v, rtol=1e-12, atol=1e-15, err_msg=name)


def test_without_a_program_the_fast_path_is_engine_nodes_step_by_step(monkeypatch):
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "PROGRAM", False)
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(5, 2), copies=False)
    assert run.program is None and {"h[3]", "o[3]", "L[5]"} <= set(run.tensors)
    assert not run.copy_grads  # no dummy copies


def test_fast_path_values_are_lazy_but_complete():
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(6, 2), copies=False)
    assert len(run.values) == len(list(run.values))
    assert "h[6]" in run.values and "h[7]" not in run.values and "h[x]" not in run.values
    assert run.grads["L[2]"] == pytest.approx(1.0)


@pytest.fixture(params=["program", "engine"])
def segments_run_on(request, monkeypatch):
    """Segments run as compiled programs when the recurrence allows, else on the engine: check both."""
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "PROGRAM", request.param == "program")
    return request.param


@pytest.mark.parametrize("arch", [a for a in WITH_LOSS if a != "fig10_11"])
@pytest.mark.parametrize("segment", [True, 1, 4, 40])
def test_checkpointed_gradients_are_identical(arch, segment, segments_run_on):
    rec = gr.load(arch)
    data, params = rec.random_inputs(13, batch=2, seed=4), rec.init_params(seed=2)
    for mode in [m for m in modes(rec) if m != "scheduled"]:
        full = rec.run(data, params, mode=mode)
        for copies in (True, False):
            ck = rec.run(data, params, mode=mode, checkpoint=segment, copies=copies)
            assert ck.loss == pytest.approx(full.loss, rel=1e-12)
            assert ck.step_losses == pytest.approx(full.step_losses, rel=1e-12)
            for name in params:
                assert rel(ck.grads[name], full.grads[name]) < 1e-12, (mode, name)


def test_checkpointing_refuses_backward_in_time_and_random_draws():
    bidir = gr.load("fig10_11")
    with pytest.raises(gr.SpecError, match=r"g\[t\+1\]"):
        bidir.run(bidir.random_inputs(4, 1), checkpoint=True)
    tf = gr.load("fig10_6")
    with pytest.raises(gr.SpecError, match="scheduled"):
        tf.run(tf.random_inputs(4, 1), mode="scheduled", checkpoint=True)


def _explicitly_truncated(rec, data, params, T, k1, k2):
    """BPTT(k1, k2) by hand: for each chunk, a full run whose state just before the
    truncation point is overridden by its own value (a constant, so no gradient goes
    past it), differentiating only that chunk's losses."""
    delays = {}
    for eq in rec.equations.values():
        for ref in references(eq.expr):
            if ref.name in rec.equations and ref.delay > 0:
                delays[ref.name] = max(delays.get(ref.name, 0), ref.delay)
    full = rec.run(data, params, backward=False)
    ends = list(range(k1, T + 1, k1))
    if ends[-1] != T:
        ends.append(T)
    total = {name: np.zeros_like(v) for name, v in params.items()}
    previous = 0
    for e in ends:
        a = max(1, e - k2 + 1)
        frozen = {f"{u}[{s}]": full.values[f"{u}[{s}]"] for u, d in delays.items() for s in range(max(1, a - d), a)}
        run = rec.run(data, params, overrides=frozen, retain_graph=True)
        chunk_loss = run.tensors[f"L[{previous + 1}]"]
        for s in range(previous + 2, e + 1):
            chunk_loss = chunk_loss + run.tensors[f"L[{s}]"]
        for name, g in zip(params, gr.grad(chunk_loss, [run.tensors[n] for n in params])):
            if g is not None:
                total[name] += g
        previous = e
    return total


@pytest.mark.parametrize("arch", ["fig10_3", "fig10_4", "lstm", "fig10_10"])
@pytest.mark.parametrize("k1,k2", [(1, 1), (3, 3), (4, 7), (5, 17), (2, 40)])
def test_truncated_bptt_equals_the_explicitly_truncated_graph(arch, k1, k2, segments_run_on):
    rec = gr.load(arch)
    T = 17
    data, params = rec.random_inputs(T, batch=2, seed=4), rec.init_params(seed=2)
    expected = _explicitly_truncated(rec, data, params, T, k1, k2)
    for copies in (True, False):
        got = rec.run(data, params, truncate=(k1, k2), copies=copies)
        for name in params:
            assert rel(got.grads[name], expected[name]) < 1e-12, name


def test_truncation_is_a_real_approximation_and_the_full_window_is_exact():
    rec = gr.load("fig10_3")
    data, params = rec.random_inputs(12, batch=2, seed=1), rec.init_params(seed=3)
    full = rec.run(data, params)
    assert rel(rec.run(data, params, truncate=(12, 12)).grads["W"], full.grads["W"]) < 1e-12
    assert rel(rec.run(data, params, truncate=(2, 2)).grads["W"], full.grads["W"]) > 1e-3


@pytest.mark.parametrize("bad", [(0, 1), (3, 2), (1.5, 2)])
def test_truncate_arguments_are_checked(bad):
    rec = gr.load("fig10_3")
    with pytest.raises(ValueError, match="k1"):
        rec.run(rec.random_inputs(4, 1), truncate=bad)


def test_long_sequence_runs_and_differentiates():
    rec = gr.load("fig10_3", sizes={"H": 8, "I": 4, "K": 4})
    data = rec.random_inputs(20_000, batch=1, seed=0)
    run = rec.run(data, copies=False)
    assert np.isfinite(run.loss) and np.all(np.isfinite(run.grads["W"]))
    ck = rec.run(data, checkpoint=True)
    assert rel(ck.grads["W"], run.grads["W"]) < 1e-10


def test_segments_run_as_programs(monkeypatch):
    from graphrnn.runtime import segments

    calls = []
    original = segments.program_segments
    monkeypatch.setattr(segments, "program_segments", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
    rec = gr.load("lstm")
    data, params = rec.random_inputs(30, batch=2, seed=1), rec.init_params(seed=1)
    full = rec.run(data, params)
    for options in ({"checkpoint": True}, {"checkpoint": 7}, {"truncate": (30, 30)}):
        got = rec.run(data, params, **options)
        assert calls[-1] is not None, options  # the programs ran it
        assert got.loss == pytest.approx(full.loss, rel=1e-12)
        assert got.step_losses == pytest.approx(full.step_losses, rel=1e-12)
        for name in params:
            assert rel(got.grads[name], full.grads[name]) < 1e-12, (options, name)
