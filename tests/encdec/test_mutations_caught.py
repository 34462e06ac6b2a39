"""Holes found by mutation testing the encoder-decoder, closed against finite differences.

* ``check_encdec`` checks each phase's dummy copies at steps τ and 1; dropping step 1 from its loop
  went unnoticed, so a wrong U^(1) must make the check fail there.
* Every dummy copy W^(t) of both phases, at every step (not only τ and 1), agrees with central
  differences of the whole model's loss in that copy alone (the encoder's reached only through C).
"""

from __future__ import annotations

import numpy as np
import pytest

from graphrnn.recurrence.encdec import load, names
from graphrnn.runtime.encdec import run_encdec
from graphrnn.verify.encdec import _Forward, check_encdec

EPS = 1e-6


def _run(name):
    model = load(name, sizes={"H": 3})
    return run_encdec(model, model.random_inputs((4, 3), batch=2, seed=3), model.init_params(seed=4))


@pytest.mark.parametrize("phase", ["enc", "dec"])
def test_a_wrong_copy_at_step_1_is_caught_there(phase):
    got = _run("fig10_12")
    copies = got.encoder.copy_grads if phase == "enc" else got.decoder.copy_grads
    copies["U"] = dict(copies["U"])  # U, not W: the encoder's W^(1) multiplies h(0) = 0, its gradient is 0
    assert np.abs(copies["U"][1]).max() > 1e-3
    copies["U"][1] = copies["U"][1] * 1.01
    report = check_encdec(got)
    assert not report.ok
    assert report.first_failure.quantity == f"∇{phase}.U^(1)", report.text()


@pytest.mark.parametrize("name", names())
def test_every_dummy_copy_at_every_step_agrees_with_differences(name):
    got = _run(name)
    forward = _Forward(got)
    rng = np.random.default_rng(11)
    for phase, run in (("enc", got.encoder), ("dec", got.decoder)):
        for pname in ("W", "U"):
            value = run.values[pname]
            per = run.copy_grads[pname]
            assert sorted(per) == list(range(1, got.T[phase] + 1))
            for t, grad in per.items():
                d = rng.standard_normal(np.shape(grad))
                d /= np.linalg.norm(d)
                up = forward.loss({f"{phase}.{pname}^({t})": value + EPS * d})
                down = forward.loss({f"{phase}.{pname}^({t})": value - EPS * d})
                fd = (up - down) / (2 * EPS)
                engine = float(np.sum(grad * d))
                assert engine == pytest.approx(fd, rel=1e-6, abs=1e-8), f"{phase}.{pname}^({t})"
            assert np.allclose(sum(per.values()), got.grads[f"{phase}.{pname}"], rtol=1e-13, atol=1e-15)
