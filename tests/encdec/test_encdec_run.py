"""Encoder-decoder runs (fig. 10.12): every gradient against PyTorch (an independent implementation written
here) and central differences, for the three ways of conditioning on C (§10.2.4), with τx ≠ τy and a batch."""

import numpy as np
import pytest

from graphrnn.recurrence.encdec import EncoderDecoder, load
from graphrnn.runtime.encdec import run_encdec
from tests._deps import require

SIZES = {"H": 3, "I": 2, "K": 3}
VARIANTS = {  # zoo name -> (starts from C, reads C at every step, link)
    "fig10_12": (True, True, "last"),
    "fig10_12_init": (True, False, "last"),
    "fig10_12_input": (False, True, "mean"),
}


def _model(name):
    sizes = dict(SIZES, D=4) if name == "fig10_12_input" else SIZES
    return load(name, sizes=sizes)


def _torch_loss(torch, variant, data, params):
    """The encoder-decoder written out in PyTorch, from the book's equations (not from graphrnn)."""
    init, every_step, link = variant
    F = torch.nn.functional
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
    B = x.shape[2]
    h, hs = torch.zeros(P["enc.W"].shape[0], B, dtype=torch.float64), []
    for t in range(x.shape[0]):
        h = torch.tanh(P["enc.b"] + P["enc.W"] @ h + P["enc.U"] @ x[t])
        hs.append(h)
    C = hs[-1] if link == "last" else torch.stack(hs).mean(0)
    C.retain_grad()
    K = P["dec.V"].shape[0]
    s = C if init else torch.zeros(P["dec.W"].shape[0], B, dtype=torch.float64)
    prev = torch.zeros(B, dtype=torch.int64)  # y[0] = class 0
    loss = 0
    for t in range(y.shape[0]):
        a = P["dec.b"] + P["dec.W"] @ s + P["dec.U"] @ F.one_hot(prev, K).T.double()
        if every_step:
            a = a + P["dec.R"] @ C
        s = torch.tanh(a)
        o = P["dec.c"] + P["dec.V"] @ s
        loss = loss + F.cross_entropy(o.T, y[t], reduction="sum")
        prev = y[t]
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in P.items()}, C.grad.numpy()


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("steps", [(5, 3), (2, 4)])
def test_gradients_match_torch(name, steps):
    torch = require("torch")
    model = _model(name)
    data = model.random_inputs(steps, batch=3, seed=4)
    params = model.init_params(seed=5)
    run = run_encdec(model, data, params)
    loss, grads, c_grad = _torch_loss(torch, VARIANTS[name], data, params)
    assert run.T == {"enc": steps[0], "dec": steps[1]}
    assert abs(run.loss - loss) <= 1e-12 * abs(loss)
    assert set(grads) == set(model.all_param_shapes())
    for k, g in grads.items():
        np.testing.assert_allclose(run.grads[k], g, rtol=1e-10, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(run.grads["C"], c_grad, rtol=1e-10, atol=1e-13)
    for k in ("enc.W", "enc.U", "enc.b"):  # the decoder's loss reaches the encoder
        assert np.abs(run.grads[k]).max() > 1e-4, k


def _loss(model, data, params):
    return run_encdec(model, data, params, backward=False).loss


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_parameter_entry_matches_central_differences(name):
    model = _model(name)
    data = model.random_inputs((4, 3), batch=2, seed=7)
    params = model.init_params(seed=8)
    run = run_encdec(model, data, params)
    eps = 1e-6
    for k, value in params.items():
        fd = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus = {**params, k: value.copy()}
            minus = {**params, k: value.copy()}
            plus[k][i] += eps
            minus[k][i] -= eps
            fd[i] = (_loss(model, data, plus) - _loss(model, data, minus)) / (2 * eps)
        np.testing.assert_allclose(run.grads[k], fd, rtol=1e-6, atol=1e-8, err_msg=k)


def test_dummy_copies_are_per_phase_and_add_up():
    model = _model("fig10_12")
    run = run_encdec(model, model.random_inputs((5, 3), batch=2, seed=1))
    assert sorted(run.copy_grads["enc.W"]) == [1, 2, 3, 4, 5]
    assert sorted(run.copy_grads["dec.W"]) == [1, 2, 3]
    for k in model.all_param_shapes():
        total = sum(run.copy_grads[k].values())
        np.testing.assert_allclose(total, run.grads[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # W^(t) of the encoder is not W^(t) of the decoder
    assert not np.allclose(run.copy_grads["enc.W"][1], run.copy_grads["dec.W"][1])


def test_the_decoder_phase_is_a_plain_taped_run_with_C_as_its_context():
    """The suggested runtime: the decoder run on its own with C given (rec.run, taped, the default) has the
    same loss and gradients; with C read only as an input, its run.context_grads['C'] is exactly the seed of the
    encoder's backward pass; with s[0] = C as well, the seed also holds the initial state's share."""
    for name in ("fig10_12_input", "fig10_12"):
        model = _model(name)
        data = model.random_inputs((4, 3), batch=2, seed=2)
        params = model.init_params(seed=3)
        run = run_encdec(model, data, params)
        dec = model.decoder.rec
        start = {s: run.values["C"] for s in model.initial_from} or None
        plain = dec.run({"y": data["y"], "C": run.values["C"]},
                        {k[4:]: v for k, v in params.items() if k[:4] == "dec."}, initial_state=start)
        assert plain.loss == run.loss
        for k in dec.param_shapes:
            np.testing.assert_array_equal(plain.grads[k], run.grads[f"dec.{k}"])
        share = np.abs(run.context_grads["C"] - plain.context_grads["C"]).max()
        if name == "fig10_12_input":
            assert share == 0
        else:  # the initial state's share: ∂L/∂s[0], which a plain run treats as a constant
            assert share > 1e-6
            assert np.array_equal(run.values["dec.s[0]"], run.values["C"])


def test_the_encoder_backward_is_seeded_with_the_context_gradient():
    """∂L/∂h[τx] of the encoder equals ∇C L when C = h[tau]; mean(h) gives each step ∇C L / τx plus its
    share through the later steps."""
    model = _model("fig10_12_init")
    run = run_encdec(model, model.random_inputs((4, 2), batch=2, seed=5))
    np.testing.assert_array_equal(run.grads["enc.h[4]"], run.grads["C"])
    model = _model("fig10_12_input")
    run = run_encdec(model, model.random_inputs((4, 2), batch=2, seed=5))
    np.testing.assert_allclose(run.grads["enc.h[4]"], run.grads["C"] / 4, rtol=1e-13)


LINKS = ["C = h[tau-1]", "C = h[1]", "C = sum(h)", "C = tanh(h[tau] + 0.5 * mean(h)) - 1"]


@pytest.mark.parametrize("link", LINKS)
def test_other_links_match_central_differences(link):
    text = load("fig10_12").text.replace("C = h[tau]", link)
    model = EncoderDecoder(text, sizes=SIZES)
    data = model.random_inputs((3, 2), batch=2, seed=9)
    params = model.init_params(seed=10)
    run = run_encdec(model, data, params)
    eps = 1e-6
    for k in ("enc.W", "enc.U"):
        direction = np.random.default_rng(0).standard_normal(params[k].shape)
        plus, minus = {**params, k: params[k] + eps * direction}, {**params, k: params[k] - eps * direction}
        fd = (_loss(model, data, plus) - _loss(model, data, minus)) / (2 * eps)
        assert abs(fd - float(np.sum(run.grads[k] * direction))) < 1e-7 * max(1.0, abs(fd)), (k, link)
    assert np.abs(run.grads["enc.U"]).max() > 1e-5  # (W gets none from C = h[1]: h[0] = 0)


def test_forward_only_and_free_running():
    model = _model("fig10_12")
    data = model.random_inputs((4, 3), batch=2, seed=1)
    ran = run_encdec(model, data, backward=False)
    assert not any(k.startswith("enc.") for k in ran.grads)
    assert np.isfinite(ran.loss) and ran.context_grads == {}
    text = load("fig10_12").text.replace("init   y = zero", "init   y = zero\n  feedback y[t] = argmax(o[t])")
    free = EncoderDecoder(text, sizes=SIZES)
    a = run_encdec(free, data, free.init_params(), mode="free")
    b = run_encdec(free, data, free.init_params(), mode="teacher")
    assert a.loss != b.loss and np.abs(a.grads["enc.W"]).max() > 0


BIDIRECTIONAL = """# a bidirectional encoder (fig. 10.11's h and g), a learned h[0], a last-step variable, a combined link
size H = 3, I = 2, K = 3
encoder over x:
  input x: I
  state h: H = learned
  state g: H
  hidden z: H
  h[t] = tanh(b + W @ h[t-1] + U @ x[t])
  g[t] = tanh(c + Q @ g[t+1] + P @ x[t])
  z[tau] = tanh(A @ h[tau])
C = h[tau] + g[1] - 0.5 * z[tau]
decoder over y:
  target y: class K
  state s: H = C
  s[t] = tanh(W @ s[t-1] + R @ C)
  o[t] = V @ s[t]
  L[t] = cross_entropy(o[t], y[t])
"""


def test_a_bidirectional_encoder_with_a_combined_link_checks_out():
    from graphrnn.verify.encdec import check_encdec

    model = EncoderDecoder(BIDIRECTIONAL)
    data = model.random_inputs((5, 2), batch=3, seed=6)
    run = run_encdec(model, data)
    report = check_encdec(run)
    assert report.ok, report.text()
    for k in ("enc.h0", "enc.Q", "enc.P", "enc.A", "enc.W"):
        assert np.abs(run.grads[k]).max() > 1e-5, k
    shorter = run_encdec(model, data, T={"enc": 3, "dec": 1})
    assert shorter.T == {"enc": 3, "dec": 1} and shorter.loss != run.loss
    single = run_encdec(model, data, dtype=np.float32)
    assert single.grads["enc.W"].dtype == np.float32 and abs(single.loss - run.loss) < 1e-5 * run.loss
