"""Helpers shared by the recurrence tests: finite differences, probes, the zoo with a loss."""

from __future__ import annotations

import re

import numpy as np
from hypothesis import HealthCheck, settings

import graphrnn as gr
from graphrnn import zoo

#: hypothesis settings for the recurrence tests: reproducible, no database, no deadline
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

#: fig. 10.2 has no output; with a readout trained by mse its gradients can be checked too
FIG10_2_WITH_LOSS = zoo.text("fig10_2") + "\ntarget z: H\nL[t] = mse(h[t], z[t])\nloss L\n"


def zoo_specs() -> dict[str, str]:
    """Every zoo architecture with a loss (fig10_2 with an added mse readout), name -> text."""
    out = {}
    for name in zoo.names():
        text = zoo.text(name)
        out[name if gr.load(name).losses else name + "+mse"] = text if gr.load(name).losses else FIG10_2_WITH_LOSS
    return out


def load(name: str, text: str | None = None) -> gr.Recurrence:
    return gr.Recurrence(text if text is not None else zoo_specs()[name], name=name.replace("+", "_"))


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the number ``f()`` with respect to every entry of ``x``
    (changed in place, entry by entry, and restored)."""
    g = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f()
        x[idx] = old - eps
        down = f()
        x[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


def assert_grad_close(analytic, numeric, what: str, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    analytic = np.asarray(analytic, dtype=np.float64)
    assert analytic.shape == numeric.shape, f"{what}: analytic shape {analytic.shape}, numerical {numeric.shape}"
    np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol, err_msg=what)


def scaled_params(rec: gr.Recurrence, seed: int = 1, scale: float = 1.5) -> dict[str, np.ndarray]:
    """Random parameters, a bit larger than ``init_params`` so the nonlinearities matter."""
    return {k: v * scale for k, v in rec.init_params(seed=seed).items()}


def probe_name(rec: gr.Recurrence, var: str) -> str:
    name = f"probe_{var}"
    while name in rec.variables or name in rec.all_param_shapes() or name in rec.spec.sizes:
        name += "_"
    return name


def with_probe(text: str, rec: gr.Recurrence, var: str) -> tuple[str, str]:
    """``text`` with ``var``'s equation ``var[t] = rhs`` turned into ``var[t] = (rhs) + probe[t]``
    and ``input probe: rows`` declared.  With the probe's data at zero nothing changes, and the
    loss's derivative with respect to ``probe[t]`` is dL/d var[t]: a finite-difference handle on
    a per-step variable through the public API.  Returns (new text, probe name)."""
    probe = probe_name(rec, var)
    rows = rec.variables[var].rows
    pattern = re.compile(rf"^(\s*){re.escape(var)}\[(t|tau)\]\s*=\s*(.*?)\s*(#.*)?$")
    lines, done = [], False
    for line in text.splitlines():
        m = pattern.match(line)
        if m and not done:
            indent, anchor, rhs = m.group(1), m.group(2), m.group(3)
            line = f"{indent}{var}[{anchor}] = ({rhs}) + {probe}[{anchor}]"
            done = True
        lines.append(line)
    assert done, f"no equation for {var} in the spec"
    return f"input {probe}: {rows}\n" + "\n".join(lines) + "\n", probe


def vector_variables(rec: gr.Recurrence) -> list[str]:
    """Computed per-step variables that are vectors (they have gradients and can be probed)."""
    return [n for n, v in rec.variables.items() if v.kind == "computed" and len(v.shape) == 2]
