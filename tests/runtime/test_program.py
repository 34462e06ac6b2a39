"""The compiled program of the fast path (program.py): exact, inspectable, and safe with its reused buffers."""

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.runtime import program, runner


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _engine(rec, *args, **kwargs):
    runner.PROGRAM = False
    try:
        return rec.run(*args, **kwargs)
    finally:
        runner.PROGRAM = True


COMPILED = ["fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_9", "fig10_10", "fig10_11", "lstm", "gru", "halt"]


@pytest.mark.parametrize("arch", COMPILED)
def test_the_zoo_runs_as_a_program(arch):
    rec = gr.load(arch)
    run = rec.run(rec.random_inputs(4, 2), copies=False)
    assert run.program is not None
    assert run.program.describe().startswith(f"program for {arch}: T=4, batch 2")


@pytest.mark.parametrize("arch", COMPILED)
@pytest.mark.parametrize("T,B", [(1, 1), (9, 3), (40, 2)])
def test_program_equals_the_engine_entry_by_entry(arch, T, B, monkeypatch):
    monkeypatch.setattr(program, "CHUNK_BYTES", 256)  # many chunks, of unequal sizes
    rec = gr.load(arch)
    data, params = rec.random_inputs(T, batch=B, seed=3), rec.init_params(seed=5)
    slow = rec.run(data, params)  # step by step, with dummy copies
    fast = rec.run(data, params, copies=False)
    assert fast.program is not None
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
    assert fast.step_losses == pytest.approx(slow.step_losses, rel=1e-12)
    assert set(fast.grads) == set(slow.grads)
    for name, g in slow.grads.items():
        assert rel(fast.grads[name], g) < 1e-12, name
    for name, v in slow.values.items():
        np.testing.assert_allclose(fast.values[name], v, rtol=1e-12, atol=1e-15, err_msg=name)


def test_backward_false_gives_values_and_loss_only():
    rec = gr.load("lstm")
    data, params = rec.random_inputs(6, 2, seed=1), rec.init_params(seed=1)
    full = rec.run(data, params, copies=False)
    fwd = rec.run(data, params, copies=False, backward=False)
    assert fwd.program is not None and fwd.loss == full.loss
    np.testing.assert_array_equal(fwd.values["h[6]"], full.values["h[6]"])
    assert "h[6]" not in fwd.grads


def test_values_handed_out_never_change():
    """A workspace somebody holds (a live run, or an array taken from it) is never reused."""
    rec = gr.load("fig10_3")
    params = rec.init_params(seed=0)
    first = rec.run(rec.random_inputs(5, 2, seed=1), params, copies=False)
    h3, gh3, gW = first.values["h[3]"].copy(), first.grads["h[3]"].copy(), first.grads["W"].copy()
    kept = first.values["h[2]"]
    kept_copy = kept.copy()
    rec.run(rec.random_inputs(5, 2, seed=2), params, copies=False)  # while `first` lives
    np.testing.assert_array_equal(first.values["h[3]"], h3)
    np.testing.assert_array_equal(first.grads["h[3]"], gh3)
    np.testing.assert_array_equal(first.grads["W"], gW)
    del first
    for seed in (3, 4):  # `first` is gone, but an array taken from it is still held
        rec.run(rec.random_inputs(5, 2, seed=seed), params, copies=False)
    np.testing.assert_array_equal(kept, kept_copy)


def test_a_free_workspace_is_reused():
    rec = gr.load("fig10_3")
    data, params = rec.random_inputs(5, 2), rec.init_params()
    run = rec.run(data, params, copies=False)
    prog = run.program
    grads = {name: run.grads[name] for name in params}  # fresh arrays, not the workspace's
    del run
    before = [id(ws) for ws in prog._pool]
    again = rec.run(data, params, copies=False)
    assert [id(ws) for ws in prog._pool] == before
    for name in params:
        np.testing.assert_array_equal(again.grads[name], grads[name])


ARGMAX_INSIDE = """
size H = 3, I = 2, K = 3
input  x: I
target y: class K
hidden h: H
loss   L
h[t] = tanh(W @ h[t-1] + U @ x[t] + R @ one_hot(argmax(o[t-1])))
o[t] = V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


@pytest.mark.parametrize("mode", ["free", "scheduled"])
@pytest.mark.parametrize("arch", ["fig10_6", "fig10_10"])
def test_free_and_scheduled_modes_run_as_programs(arch, mode):
    rec = gr.load(arch)
    data, params = rec.random_inputs(6, 3, seed=1), rec.init_params(seed=4)
    run = rec.run(data, params, mode=mode, p=0.4, seed=5, copies=False)
    assert run.program is not None
    assert "fed back on the engine's functions (no gradient)" in run.program.describe()
    taped = rec.run(data, params, mode=mode, p=0.4, seed=5)
    assert set(run.fed) == set(taped.fed) and all(np.array_equal(run.fed[k], taped.fed[k]) for k in taped.fed)
    for name in params:
        assert rel(run.grads[name], taped.grads[name]) < 1e-12, name


def test_what_the_program_cannot_run_goes_to_the_engine():
    # an argmax inside an equation that carries a gradient (not a fed value): the taped engine runs it
    am = gr.Recurrence(ARGMAX_INSIDE, name="argmax_inside")
    data, params = am.random_inputs(5, 2, seed=2), am.init_params(seed=3)
    fast = am.run(data, params, copies=False)
    assert fast.program is None
    slow = am.run(data, params)
    for name in params:
        assert rel(fast.grads[name], slow.grads[name]) < 1e-12, name
    # retain_graph needs the engine graph; anomaly detection checks every op
    rec = gr.load("fig10_3")
    assert rec.run(rec.random_inputs(4, 2), copies=False, retain_graph=True).program is None
    with gr.detect_anomaly():
        assert rec.run(rec.random_inputs(4, 2), copies=False).program is None


def test_a_non_finite_value_is_named():
    rec = gr.load("fig10_3")
    params = rec.init_params()
    params["b"][:], params["V"][:] = 50.0, 1e308  # h = tanh(50 + ...) = 1, so o = c + V @ h overflows
    with pytest.raises(gr.DataError, match=r"non-finite value first at o\[1\]"), np.errstate(all="ignore"):
        rec.run(rec.random_inputs(6, 2), params, copies=False)


def test_the_description_says_what_runs_how():
    rec = gr.load("fig10_3")
    text = rec.run(rec.random_inputs(7, 2), copies=False).program.describe()
    assert "h:in     all 7 steps at once" in text
    assert "h        step by step (forwards in time); ∇W as one product over the steps" in text
    assert "forward and backward together" in text


def test_program_matches_the_engine_fast_path_on_a_long_run():
    rec = gr.load("gru", sizes={"H": 6, "I": 3, "K": 4})
    data, params = rec.random_inputs(3000, batch=1, seed=0), rec.init_params(seed=0)
    fast = rec.run(data, params, copies=False)
    engine = _engine(rec, data, params, copies=False)
    assert fast.program is not None and engine.program is None
    for name in params:
        assert rel(fast.grads[name], engine.grads[name]) < 1e-10, name


def test_ops_said_to_save_nothing_save_nothing():
    """The generated steps keep no saved values for these ops (stepcode.SAVES_NOTHING): check each forward."""
    from graphrnn.engine.ops import REGISTRY
    from graphrnn.runtime.stepcode import SAVES_NOTHING

    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 1.5, (3, 3)), rng.uniform(0.5, 1.5, (3, 3))
    attrs = {"pow": {"p": 2.0}, "reshape": {"shape": (9,)}, "getitem": {"index": (slice(1), 0)},
             "one_hot": {"classes": 2}}
    unary = {"neg", "pow", "transpose", "sum", "mean", "reshape", "getitem", "identity", "exp", "log", "tanh",
             "sigmoid", "relu", "softmax", "log_softmax", "one_hot"}
    for name in SAVES_NOTHING:
        args = (a,) if name in unary else (a, b)
        _, saved = REGISTRY[name].forward(*args, **attrs.get(name, {}))
        assert saved is None, name


def test_a_step_keeps_only_what_its_backward_reads():
    # tanh(W h[t-1] + h:in[t]): its value is in its buffer and no other output is read: nothing per step
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(5, 2), copies=False)
    (stage,) = [s for s in run.program.stages if s.kind == "steps"]
    assert stage.code["h"].stored == [] and stage.code["h"].saving == []
    # h = tanh(s) * q: the product's VJP reads tanh(s), an intermediate output, so each step keeps it
    lstm = gr.load("lstm")
    run = lstm.run(lstm.random_inputs(5, 2), copies=False)
    (stage,) = [s for s in run.program.stages if s.kind == "steps"]
    assert stage.code["h"].stored == [0]


@pytest.mark.parametrize("arch", COMPILED)
def test_a_reused_workspace_holds_nothing_from_the_run_before(arch, monkeypatch):
    """Buffers are written, not cleared, where the plan says each step is written first: a second
    run on other data and parameters must give exactly what a fresh evaluation gives."""
    monkeypatch.setattr(program, "CHUNK_BYTES", 512)
    rec = gr.load(arch)
    rec.run(rec.random_inputs(11, 3, seed=1), rec.init_params(seed=1), copies=False)
    data, params = rec.random_inputs(11, 3, seed=2), rec.init_params(seed=2)
    again = rec.run(data, params, copies=False)
    assert again.program is not None
    fresh = _engine(rec, data, params, copies=False)
    for name, g in fresh.grads.items():
        assert rel(again.grads[name], g) < 1e-12, name
    if arch == "fig10_11":
        return  # reads g[t+1]: no truncated BPTT
    window = rec.run(data, params, truncate=(3, 5))  # windows whose losses count from different steps
    reference = _engine(rec, data, params, truncate=(3, 5))
    for name in params:
        assert rel(window.grads[name], reference.grads[name]) < 1e-12, name


def test_release_buffers_frees_the_programs():
    rec = gr.load("fig10_3", sizes={"H": 8, "I": 4, "K": 4})
    data = rec.random_inputs(2000, batch=1)
    first = rec.run(data, copies=False)
    loss = first.loss
    del first
    assert rec.release_buffers() > 2000 * 8 * 8  # at least h's values and gradients
    assert rec.release_buffers() == 0
    assert rec.run(data, copies=False).loss == loss  # rebuilt on demand


def test_drawing_a_programs_gradient_paths_says_what_to_do():
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(3, 2), copies=False)
    with pytest.raises(gr.RenderError, match="compiled fast path.*copies=True"):
        gr.render.draw_grad_path(run, source="L", target="h[1]")


CONDITIONED = """
size H = 4, I = 3, J = 2, K = 3
context c: J
input   x: I
target  y: class K
state   h: H = learned
init    x = zero
loss    L

h[t] = tanh(b + W @ h[t-1] + U @ x[t] + R @ c)
o[t] = V @ h[t] + S @ c
L[t] = cross_entropy(o[t], y[t+1]) + 0.5 * mse(o[t], x[t-1] * 0.1)
"""


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_contexts_learned_states_and_data_read_at_other_steps(dtype):
    """A context in the recurrence and in the outputs, a learned h[0], targets read one step ahead
    and inputs one step back (init zero): the program against the engine, step by step."""
    rec = gr.Recurrence(CONDITIONED)
    data, params = rec.random_inputs(7, batch=3, seed=4), rec.init_params(seed=4)
    slow = rec.run(data, params, dtype=dtype)
    fast = rec.run(data, params, dtype=dtype, copies=False)
    assert fast.program is not None
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert fast.loss == pytest.approx(slow.loss, rel=tol)
    for name, g in slow.grads.items():
        assert rel(fast.grads[name], g) < tol, name
        assert fast.grads[name].dtype == g.dtype, name
    for name, v in slow.values.items():
        np.testing.assert_allclose(fast.values[name], v, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("options", [{"checkpoint": 3}, {"checkpoint": True}, {"truncate": (2, 5)}])
def test_segments_carry_a_learned_state_and_contexts(options):
    text = CONDITIONED.replace("y[t+1]", "y[t]").replace("x[t-1]", "x[t]")
    rec = gr.Recurrence(text)
    data, params = rec.random_inputs(10, batch=2, seed=6), rec.init_params(seed=6)
    got = rec.run(data, params, **options)
    reference = _engine(rec, data, params, **options)
    assert got.loss == pytest.approx(reference.loss, rel=1e-12)
    assert got.step_losses == pytest.approx(reference.step_losses, rel=1e-12)
    for name in params:
        assert rel(got.grads[name], reference.grads[name]) < 1e-12, name
    if "checkpoint" in options:
        full = rec.run(data, params)
        for name in params:
            assert rel(got.grads[name], full.grads[name]) < 1e-12, name


def test_two_threads_running_one_recurrence_get_their_own_buffers():
    from concurrent.futures import ThreadPoolExecutor

    rec = gr.load("fig10_3", sizes={"H": 16, "I": 8, "K": 8})
    params = rec.init_params(seed=0)
    datas = [rec.random_inputs(300, batch=4, seed=s) for s in range(8)]
    expected = [_engine(rec, d, params, copies=False).grads["W"] for d in datas]

    def job(i):
        return rec.run(datas[i], params, copies=False).grads["W"]

    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(job, range(len(datas))), expected):
                assert rel(got, want) < 1e-12


def test_a_recurrence_without_a_loss_behaves_as_on_the_engine():
    rec = gr.load("fig10_2")
    data = rec.random_inputs(3, 2)
    with pytest.raises(gr.SpecError, match="no loss to differentiate"):
        rec.run(data, copies=False, backward=True)
    run = rec.run(data, copies=False, backward=False)
    engine = _engine(rec, data, copies=False, backward=False)
    assert np.isnan(run.loss) and np.isnan(engine.loss) and run.step_losses == engine.step_losses == {}
    np.testing.assert_array_equal(run.values["h[3]"], engine.values["h[3]"])


def test_an_output_at_the_last_step_only_is_a_stage_of_one_step():
    rec = gr.load("fig10_5")  # o[tau], L[tau]
    data, params = rec.random_inputs(7, 2, seed=4), rec.init_params(seed=4)
    run = rec.run(data, params, copies=False)
    assert "o        at the last step only (T = 7)" in run.program.describe()
    assert dict(run.step_losses) == pytest.approx(dict(_engine(rec, data, params).step_losses), rel=1e-13)
    assert list(run.step_losses) == [7] and "o[7]" in run.values and "o[6]" not in run.values


# ------------------------------------------------------------------------------ random recurrences


def _random_settings(n):
    from hypothesis import HealthCheck, settings

    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def test_random_recurrences_run_as_programs_and_match_the_interpreter():
    """Random recurrences (delays > 1, backward states, learned states, contexts, tau, argmax feedback
    in free-running mode) run as compiled programs, and their values and gradients are the
    independent interpreter's (tests/reference)."""
    from hypothesis import given, note
    from hypothesis import strategies as st
    from reference.random_specs import recurrences
    from reference.test_interpreter import Reference, compare, random_params

    ran = []

    @_random_settings(40)
    @given(recurrences(), st.integers(1, 5), st.integers(1, 2), st.integers(0, 2 ** 16))
    def check(drawn, T, batch, seed):
        note(drawn.text)
        rec = gr.Recurrence(drawn.text, name="random")
        data, params = rec.random_inputs(T, batch=batch, seed=seed), random_params(rec, seed)
        for mode in ("teacher", "free") if drawn.feedback else ("teacher",):
            run = rec.run(data, params, mode=mode, copies=False)
            assert run.program is not None, mode
            ran.append(mode)
            compare(rec, Reference(drawn.text, data, params, T, mode), copies=False)

    check()
    assert "free" in ran  # not vacuous: feedback was drawn


def test_random_recurrences_in_segments_run_as_programs_and_match_the_engine():
    """Checkpointed and truncated BPTT of random recurrences that run forwards in time: the compiled
    segments against the same segments on the taped engine (and checkpoints against the whole run)."""
    from hypothesis import assume, given, note
    from hypothesis import strategies as st
    from reference.random_specs import recurrences

    from graphrnn.runtime import segments

    ran = []

    @_random_settings(40)
    @given(recurrences(), st.integers(1, 6), st.sampled_from([{"checkpoint": 1}, {"checkpoint": 2},
                                                              {"truncate": (1, 1)}, {"truncate": (2, 3)}]))
    def check(drawn, T, options):
        note(drawn.text)
        rec = gr.Recurrence(drawn.text, name="random")
        data, params = rec.random_inputs(T, batch=2, seed=T), rec.init_params(seed=3)
        calls = []
        original = segments.program_segments
        segments.program_segments = lambda *a, **k: calls.append(original(*a, **k)) or calls[-1]
        try:
            try:
                got = rec.run(data, params, **options)
            except gr.SpecError as e:  # a computed value read at a later step: segments run forwards in time
                assume("runs forwards in time" not in str(e))
                raise
            except ValueError as e:  # a truncated window too short for a read at tau
                assume("does not reach" not in str(e))
                raise
            segments.program_segments = lambda *a, **k: None
            engine = rec.run(data, params, **options)
        finally:
            segments.program_segments = original
        ran.append(calls[-1] is not None)
        assert got.loss == pytest.approx(engine.loss, rel=1e-12, abs=1e-14)
        for name in params:
            assert np.max(np.abs(got.grads[name] - engine.grads[name]), initial=0.0) <= \
                1e-10 * np.max(np.abs(engine.grads[name]), initial=0.0) + 1e-15, name
        if "checkpoint" in options:
            full = rec.run(data, params)
            for name in params:
                assert np.max(np.abs(got.grads[name] - full.grads[name]), initial=0.0) <= \
                    1e-10 * np.max(np.abs(full.grads[name]), initial=0.0) + 1e-15, name

    check()
    # the reference generator draws last-step reads h[tau-k] often: a last segment shorter than such a read
    # runs on the taped engine (segments.program_segments returns None), which the comparison above covers
    assert sum(ran) >= 0.6 * len(ran), f"programs ran {sum(ran)} of {len(ran)} segmented runs"


def test_the_generated_steps_are_the_registrys_rules_bit_for_bit(monkeypatch):
    """The generated steps multiply with ndarray.dot (less overhead than the matmul ufunc) and write
    the common VJPs out (stepcode.INLINE): the same BLAS products as the registry's ``a @ b`` and the
    same ufuncs in the same order, so the same bits as steps calling the registry."""
    from graphrnn.runtime import stepcode

    rng = np.random.default_rng(0)
    for m, k, n in [(32, 32, 1), (32, 32, 4), (5, 3, 2), (128, 128, 32), (512, 512, 64), (16, 32, 1)]:
        for transposed in (False, True):
            a = rng.standard_normal((k, m)).T if transposed else rng.standard_normal((m, k))
            b = rng.standard_normal((k, 40 * n + 3))[:, 3:3 + n]
            g = rng.standard_normal((m, n))
            assert np.array_equal(a.dot(b), a @ b) and np.array_equal(g.dot(b.T), g @ b.T)
    for arch, sizes in [("fig10_3", {"H": 32, "I": 16, "K": 16}), ("gru", {"H": 5}), ("lstm", {"H": 4})]:
        runs = []
        for inline in (False, True):
            monkeypatch.setattr(stepcode, "INLINE", inline)
            rec = gr.load(arch, sizes=sizes)  # a fresh recurrence: its own programs
            data, params = rec.random_inputs(30, batch=2, seed=3), rec.init_params(seed=4)
            runs.append(rec.run(data, params, copies=False))
        called, inlined = runs
        sources = [c.forward_source + c.backward_source for s in inlined.program.stages for c in s.code.values()]
        assert any(".dot" in src for src in sources) and not any(
            ".dot" in c.forward_source + c.backward_source for s in called.program.stages for c in s.code.values())
        for name, v in called.values.items():
            np.testing.assert_array_equal(inlined.values[name], v, err_msg=f"{arch} {name}")
        for name, g in called.grads.items():
            np.testing.assert_array_equal(inlined.grads[name], g, err_msg=f"{arch} d{name}")


@pytest.mark.parametrize("arch", ["fig10_3", "gru", "fig10_11", "fig10_10"])
def test_one_sequence_steps_on_step_major_copies_bit_for_bit(arch, monkeypatch):
    """With B = 1 a recurrent stage works on step-major copies of its buffers (program.SHADOW): the same
    bits as on the buffers' strided columns, and the workspace (copies included) is reused."""
    runs = []
    for shadow in (False, True):
        monkeypatch.setattr(program, "SHADOW", shadow)
        rec = gr.load(arch)  # a fresh recurrence: its own programs and workspaces
        data, params = rec.random_inputs(25, batch=1, seed=7), rec.init_params(seed=8)
        mode = "free" if arch == "fig10_10" else "teacher"  # a fed value's stage reads the buffers themselves
        runs.append(rec.run(data, params, mode=mode, copies=False))
        if shadow:
            ws = runs[-1].program._pool[-1]
            assert ws.shadow is not None
            prog = runs[-1].program
    plain, shadowed = runs
    for name, v in plain.values.items():
        np.testing.assert_array_equal(shadowed.values[name], v, err_msg=f"{arch} {name}")
    for name, g in plain.grads.items():
        np.testing.assert_array_equal(shadowed.grads[name], g, err_msg=f"{arch} d{name}")
    del runs, plain, shadowed
    ws = prog._pool[-1]
    assert ws.free()
    again = rec.run(data, params, mode=mode, copies=False)
    assert again.program._pool[-1] is ws  # reused, not a new workspace every run
