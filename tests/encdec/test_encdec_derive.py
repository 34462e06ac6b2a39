"""The derived BPTT of an encoder-decoder: the decoder's with C as a context, the encoder's seeded by ∇C L;
its numbers (numpy, from forward values only) equal the engine's run, for each conditioning and link."""

import doctest

import numpy as np
import pytest

import importlib
from graphrnn.derive import DeriveError
from graphrnn.derive.encdec import derive_encdec
from graphrnn.recurrence.encdec import EncoderDecoder, load, names
from graphrnn.runtime.encdec import run_encdec


def _agree(model, steps=(4, 3), batch=3):
    run = run_encdec(model, model.random_inputs(steps, batch=batch, seed=11), model.init_params(seed=12))
    derived = derive_encdec(model).evaluate(run)
    assert set(run.grads) <= set(derived)
    for key, value in run.grads.items():
        np.testing.assert_allclose(derived[key], value, rtol=1e-11, atol=1e-14, err_msg=key)
    return run, derived


@pytest.mark.parametrize("name", names())
def test_the_derived_gradients_are_the_engine_s(name):
    _agree(load(name, sizes={"H": 3}))


@pytest.mark.parametrize("link", ["C = h[tau-1]", "C = sum(h)"])
def test_other_links(link):
    _agree(EncoderDecoder(load("fig10_12").text.replace("C = h[tau]", link), sizes={"H": 3}), steps=(3, 4))


def test_the_text_shows_the_context_and_the_seed():
    text = derive_encdec(load("fig10_12")).text()
    assert "∇C L = Σ_t Rᵀ diag(1 − (s(t))²) ∇s(t) L + ∇s(0) L" in text
    assert "∇s(0) L = Wᵀ diag(1 − (s(1))²) ∇s(1) L    (s(0) = C)" in text
    assert "∇h(τ) L = ∇C L" in text
    assert "∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L    for 1 ≤ t ≤ τ−1" in text
    assert "Lseed" not in text and "zseed" not in text
    mean = derive_encdec(load("fig10_12_input")).text()
    assert "∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + ∇C L / τ    for 1 ≤ t ≤ τ−1" in mean


def test_links_the_derivation_does_not_cover_are_refused_with_the_way_out():
    model = EncoderDecoder(load("fig10_12").text.replace("C = h[tau]", "C = tanh(h[tau])"))
    with pytest.raises(DeriveError, match="check_encdec"):
        derive_encdec(model)


def test_the_docstring_examples_hold():
    failed, tried = doctest.testmod(importlib.import_module("graphrnn.derive.encdec"))
    assert tried > 0 and failed == 0
