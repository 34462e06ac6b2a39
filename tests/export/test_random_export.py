"""Hypothesis random recurrences (the generator of tests/runtime/test_random_recurrences.py: delays 1..3,
variables running backward in time, learned initial states, every operation of the notation, mse /
cross_entropy / bce losses), exported to PyTorch and JAX: graphrnn's loss and gradients to 1e-10.

JAX compiles every new recurrence (about two seconds each here), so it sees fewer examples than PyTorch."""

from __future__ import annotations

import numpy as np
from _export_testlib import compare, jax_x64, require
from _rec_testlib import SETTINGS
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from test_random_recurrences import _setup, recurrences


def _check(spec, T, batch, seed, target):
    text, _ = spec
    note(text)
    rec, data, params = _setup(text, T, batch, seed)
    run = rec.run(data, params=params, T=T)
    assume(np.isfinite(run.loss) and abs(run.loss) < 1e6)
    compare(rec, data, params, T=T, targets=(target,))


@SETTINGS
@given(recurrences(), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_export_to_torch(spec, T, batch, seed):
    require("torch")
    _check(spec, T, batch, seed, "torch")


@settings(SETTINGS, max_examples=10)
@given(recurrences(), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_export_to_jax(spec, T, batch, seed):
    jax_x64()
    _check(spec, T, batch, seed, "jax")
