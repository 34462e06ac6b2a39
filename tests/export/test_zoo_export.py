"""Every zoo spec, exported to PyTorch and to JAX, gives graphrnn's loss and gradients to 1e-10 (float64)."""

from __future__ import annotations

import numpy as np
import pytest
from _export_testlib import compare, imports, jax_loss_and_grads, load_source, require, torch_loss_and_grads
from _rec_testlib import load, zoo_specs

import graphrnn as gr

ZOO = zoo_specs()


def _setup(rec, T=5, batch=3, seed=0):
    data = rec.random_inputs(T, batch=batch, seed=seed)
    params = {k: 1.5 * v for k, v in rec.init_params(seed=seed + 1).items()}  # large enough to be nonlinear
    return data, params


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_spec_matches_graphrnn(name):
    rec = load(name)
    data, params = _setup(rec)
    compare(rec, data, params, T=5)


@pytest.mark.parametrize("name", sorted(n for n in ZOO if load(n).spec.feedbacks))
def test_free_running_mode_matches_graphrnn(name):
    """Free running (fig. 10.6): argmax fed back without gradient, deterministic, so exportable."""
    rec = load(name)
    data, params = _setup(rec, seed=3)
    compare(rec, data, params, T=5, mode="free")


@pytest.mark.parametrize("name", ["fig10_3", "fig10_9", "fig10_11"])
def test_the_number_of_steps_comes_from_the_data_as_in_graphrnn(name):
    """Without T, both read it off the data; fig. 10.9 reads y[t+1], so T is one less than y's length."""
    rec = gr.load(name)
    data, params = _setup(rec, T=4, batch=2, seed=5)
    run = rec.run(data, params=params)
    assert run.T == 4
    torch_loss, _ = torch_loss_and_grads(gr.export.to_torch(rec), params, data)
    jax_loss, _ = jax_loss_and_grads(gr.export.to_jax(rec), params, data)
    assert torch_loss == pytest.approx(run.loss, rel=1e-12)
    assert jax_loss == pytest.approx(run.loss, rel=1e-12)


def test_learned_initial_states_are_parameters_named_as_in_graphrnn():
    text = gr.zoo.text("lstm").replace("state  h: H = zero", "state  h: H = learned").replace(
        "state  s: H = zero", "state  s: H = learned")
    rec = gr.Recurrence(text, name="lstm_learned")
    assert set(rec.learned_inits().values()) == {"h0", "s0"}
    data, params = _setup(rec)
    compare(rec, data, params, T=5)


def test_the_contract_of_the_torch_file():
    torch = require("torch")
    rec = gr.load("fig10_3")
    source = gr.export.to_torch(rec)
    assert imports(source) == {"torch"}
    module = load_source(source)
    params = rec.init_params(seed=2)
    model = module.make_model(params)
    assert isinstance(model, torch.nn.Module)
    assert [n for n, _ in model.named_parameters()] == list(rec.all_param_shapes())
    for name, p in model.named_parameters():
        assert tuple(p.shape) == rec.all_param_shapes()[name]
        np.testing.assert_array_equal(p.detach().numpy(), params[name])  # same column layout, not transposed
    data = rec.random_inputs(3, batch=2, seed=2)
    tensors = {k: torch.as_tensor(v) for k, v in data.items()}  # tensors as well as arrays
    assert float(model(tensors).detach()) == pytest.approx(rec.run(data, params=params).loss, rel=1e-12)


def test_each_equation_is_one_line_with_the_spec_as_a_comment():
    rec = gr.load("gru")
    for source in (gr.export.to_torch(rec), gr.export.to_jax(rec)):
        code = source.split('"""', 2)[2]
        for eq in rec.spec.equations:
            lines = [line for line in code.splitlines() if line.rstrip().endswith("# " + " ".join(eq.text.split()))]
            assert len(lines) == 1, (eq.text, lines)


def test_the_jax_function_is_built_on_scan_and_jits():
    jax = require("jax")
    rec = gr.load("fig10_11")
    source = gr.export.to_jax(rec)
    assert "jax.lax.scan(" in source and "reverse=True" in source  # g runs backward in time
    assert imports(source) == {"jax"}
    loss_fn = load_source(source).loss_fn
    data, params = _setup(rec, T=4, batch=2)
    jax.config.update("jax_enable_x64", True)
    jaxpr = jax.make_jaxpr(lambda p: loss_fn(p, data))(params)
    assert "scan" in str(jaxpr)
    assert float(jax.jit(loss_fn)(params, data)) == pytest.approx(rec.run(data, params=params).loss, rel=1e-12)
