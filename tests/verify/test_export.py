"""export_npz: a run's parameters, data, loss and gradients, readable without pickle, and right."""

from __future__ import annotations

import numpy as np
import pytest
from _deps import require

from graphrnn import zoo
from graphrnn.verify import verify
from graphrnn.verify.export import export_npz

T, B = 5, 3


def _softmax(o):
    e = np.exp(o - o.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def numpy_bptt(W, U, V, b, c, x, y, h0):
    """Fig. 10.3 forward (eqs. 10.8-10.14) and BPTT (eqs. 10.17-10.28), in plain numpy, columns as vectors."""
    T = x.shape[0]
    h, o, loss = [h0], [None], 0.0
    for t in range(1, T + 1):
        h.append(np.tanh(b + W @ h[t - 1] + U @ x[t - 1]))
        o.append(c + V @ h[t])
        p = _softmax(o[t])
        loss += -np.log(p[y[t - 1], np.arange(p.shape[1])]).sum()
    g_o = {}
    for t in range(1, T + 1):
        g = _softmax(o[t])
        g[y[t - 1], np.arange(g.shape[1])] -= 1.0  # eq. 10.18
        g_o[t] = g
    g_h = {T: V.T @ g_o[T]}  # eq. 10.19
    for t in range(T - 1, 0, -1):  # eq. 10.21, the diagonal applied before Wᵀ
        g_h[t] = W.T @ ((1 - h[t + 1] ** 2) * g_h[t + 1]) + V.T @ g_o[t]
    d = {t: (1 - h[t] ** 2) * g_h[t] for t in g_h}
    copies = {
        "c": [g_o[t].sum(axis=1, keepdims=True) for t in range(1, T + 1)],
        "b": [d[t].sum(axis=1, keepdims=True) for t in range(1, T + 1)],
        "V": [g_o[t] @ h[t].T for t in range(1, T + 1)],
        "W": [d[t] @ h[t - 1].T for t in range(1, T + 1)],
        "U": [d[t] @ x[t - 1].T for t in range(1, T + 1)],
    }
    return {
        "loss": loss,
        "h": np.stack(h[1:]), "grad_h": np.stack([g_h[t] for t in range(1, T + 1)]),
        "grad_o": np.stack([g_o[t] for t in range(1, T + 1)]),
        "copies": {k: np.stack(v) for k, v in copies.items()},
    }


@pytest.fixture
def exported(tmp_path):
    path = tmp_path / "fig10_3.npz"
    export_npz(path, "fig10_3", steps=T, batch=B, seed=7)
    return np.load(path, allow_pickle=False)


def test_the_export_loads_without_pickle_and_has_every_key(exported):
    files = set(exported.files)
    rec = zoo.load("fig10_3")
    for p in rec.param_shapes:
        assert {f"param/{p}", f"grad/{p}", f"copy_grad/{p}"} <= files
    assert {"init/h", "input/x", "target/y", "loss", "spec", "grad/h", "grad/o", "grad/L"} <= files
    assert str(exported["spec"]) == rec.spec.text
    assert exported["input/x"].shape == (T, 3, B) and exported["target/y"].shape == (T, B)
    assert exported["grad/h"].shape == (T, 5, B) and exported["copy_grad/W"].shape == (T, 5, 5)
    assert exported["loss"].shape == ()
    assert all(exported[k].dtype != object for k in exported.files)


def test_the_exported_gradients_match_plain_numpy_bptt_from_the_book(exported):
    e = exported
    ref = numpy_bptt(e["param/W"], e["param/U"], e["param/V"], e["param/b"], e["param/c"], e["input/x"],
                     e["target/y"], e["init/h"])
    assert float(e["loss"]) == pytest.approx(ref["loss"], rel=1e-12)
    np.testing.assert_allclose(e["value/h"], ref["h"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(e["grad/o"], ref["grad_o"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(e["grad/h"], ref["grad_h"], rtol=0, atol=1e-12)
    for p, per_step in ref["copies"].items():
        np.testing.assert_allclose(e[f"copy_grad/{p}"], per_step, rtol=0, atol=1e-12)
        np.testing.assert_allclose(e[f"grad/{p}"], per_step.sum(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(e["grad/L"], np.ones(T))


def test_a_report_exports_the_run_it_checked(tmp_path):
    report = verify("fig10_9", steps=3, batch=2, dtype="float32")
    arrays = export_npz(tmp_path / "deep" / "fig10_9.npz", report)
    loaded = np.load(tmp_path / "deep" / "fig10_9.npz", allow_pickle=False)
    assert set(loaded.files) == set(arrays)
    assert loaded["context/x"].shape == (3, 2)  # one vector for the whole sequence
    assert loaded["target/y"].shape == (4, 2)  # y[t+1] is read: one step more than τ
    assert loaded["param/W"].dtype == np.float32 and loaded["grad/W"].dtype == np.float32
    np.testing.assert_array_equal(loaded["grad/W"], report.run.grads["W"])
    np.testing.assert_allclose(loaded["copy_grad/W"].sum(axis=0), loaded["grad/W"], atol=1e-6)


def test_last_step_only_variables_and_backward_states_are_exported(tmp_path):
    a = export_npz(tmp_path / "a.npz", "fig10_5", steps=4, batch=1)
    assert a["grad/o"].shape == (1, 4, 1) and a["grad/h"].shape == (4, 5, 1)
    b = export_npz(tmp_path / "b.npz", "fig10_11", steps=4, batch=1)
    assert {"init/h", "init/g"} <= set(b)  # h[0] and g[τ+1]


def test_exporting_a_spec_without_a_loss_is_a_clear_error(tmp_path):
    from graphrnn.errors import GraphrnnError

    with pytest.raises(GraphrnnError, match="no loss"):
        export_npz(tmp_path / "x.npz", "fig10_2")


def test_the_export_matches_pytorch_autograd(exported):
    torch = require("torch")
    e = exported
    P = {k: torch.tensor(e[f"param/{k}"], requires_grad=True) for k in ("W", "U", "V", "b", "c")}
    h = torch.tensor(e["init/h"])
    loss = 0.0
    for t in range(T):
        h = torch.tanh(P["b"] + P["W"] @ h + P["U"] @ torch.tensor(e["input/x"][t]))
        o = P["c"] + P["V"] @ h
        loss = loss + torch.nn.functional.cross_entropy(o.T, torch.tensor(e["target/y"][t]), reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(float(e["loss"]), rel=1e-12)
    for k, p in P.items():
        np.testing.assert_allclose(p.grad.numpy(), e[f"grad/{k}"], rtol=0, atol=1e-12)
