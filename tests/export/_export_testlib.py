"""What the export tests share: the references they need, loading an exported file, and the comparison.

``require("torch")`` is the suite's shared helper (``tests/_deps.py``): under ``CI=true`` a missing reference
FAILS the test (the test command installs torch and jax, so a missing one is a broken setup, not a reason to
skip); elsewhere it skips with the reason.
"""

from __future__ import annotations

import ast
import types

import numpy as np

import graphrnn as gr
from _deps import require  # noqa: F401  (re-exported for the test modules)

#: the agreement the issue asks for: loss and every gradient within 1e-10, relative, in float64
RTOL = 1e-10


def jax_x64():
    """jax, with 64-bit floats on (graphrnn computes in float64)."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def imports(source: str) -> set[str]:
    """The top-level packages an exported file imports (anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0])
    return found


def load_source(source: str, name: str = "exported"):
    """Run an exported file's source as a fresh module (as `import model` would) and return the module."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own generated code, under test
    return module


def assert_close(what: str, got, want, rtol: float = RTOL, reference: str = "graphrnn's") -> None:
    """``got`` equals ``want`` to ``rtol`` relative to the largest entry of ``want`` (a tiny absolute floor
    for gradients that are exactly zero, such as a parameter the loss does not reach)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, {reference} {want.shape}"
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, 1e-300)
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    assert err <= rtol * scale + 1e-300, f"{what}: differs from {reference} by {err:.3g} (relative {err / scale:.3g})"


def torch_loss_and_grads(source: str, params, data, T=None):
    torch = require("torch")
    model = load_source(source, "exported_torch").make_model({k: np.array(v) for k, v in params.items()})
    loss = model(data, T=T) if T is not None else model(data)
    loss.backward()
    named = dict(model.named_parameters())
    assert set(named) == set(params), f"named_parameters {sorted(named)} are not the spec's {sorted(params)}"
    grads = {}
    for name, p in named.items():
        assert tuple(p.shape) == tuple(np.shape(params[name])), name
        assert p.dtype == torch.float64, name
        grads[name] = p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape))
    return float(loss.detach()), grads


def jax_loss_and_grads(source: str, params, data, T=None, jit: bool = True):
    jax = jax_x64()
    loss_fn = load_source(source, "exported_jax").loss_fn
    f = jax.value_and_grad(loss_fn)
    if jit:
        f = jax.jit(f, static_argnames="T")
    loss, grads = f({k: np.array(v) for k, v in params.items()}, data, T=T)
    return float(loss), {k: np.asarray(v) for k, v in grads.items()}


def compare(rec: gr.Recurrence, data, params, T=None, mode: str = "teacher", targets=("torch", "jax"),
            jit: bool = True) -> None:
    """The exported torch module and jax function give graphrnn's loss and gradients (assert)."""
    run = rec.run(data, params=params, T=T, mode=mode)
    for target in targets:
        if target == "torch":
            loss, grads = torch_loss_and_grads(gr.export.to_torch(rec, mode), params, data, T)
        else:
            loss, grads = jax_loss_and_grads(gr.export.to_jax(rec, mode), params, data, T, jit=jit)
        assert_close(f"{rec.name} ({mode}) {target} loss", loss, run.loss)
        assert set(grads) == set(params)
        for name in params:
            assert_close(f"{rec.name} ({mode}) {target} d loss / d {name}", grads[name], run.grads[name])
