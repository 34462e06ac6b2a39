"""Vanishing and exploding gradients (§10.7, Pascanu et al. 2013), measured and drawn.

The gradient of the last step's loss L^(τ) carried back to h^(t) is a product of
τ − t Jacobians; in the standard RNN each is Wᵀ diag(1 − (h)²).  When the largest
singular value σ_max of the recurrent matrix W is below 1 the product shrinks at
least as fast as σ_max^(τ−t) (tanh′ ≤ 1): the gradient vanishes.  Above 1 it *may*
grow — σ_max > 1 is necessary for exploding gradients, not sufficient, since
saturated units (tanh′ ≈ 0) can still kill it.

:func:`gradient_norms` measures ‖∇_{h^(t)} L^(τ)‖ against τ − t with the engine;
:func:`plot_gradient_norms` draws it for the spec's parameters and for the
recurrent matrices rescaled to chosen σ_max (matplotlib, an optional extra).

>>> import graphrnn as gr
>>> from graphrnn.verify.plot import gradient_norms
>>> g = gradient_norms(gr.load("fig10_3"), steps=12, sigma=0.5)
>>> g.params, bool(g.norms[-1] < 1e-3 * g.norms[0])
(('W',), True)
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..engine import grad
from ..errors import GraphrnnError
from .check import VerifyError, _load
from .perturb import forward_graph

INSTALL_HINT = "pip install 'graphrnn[plot]' (or: pip install matplotlib)"


def recurrent_params(rec, state: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The state variable to follow back in time and the parameters on its recurrent edges.

    The state is ``state`` if given, else ``h`` when it is recurrent, else the first
    variable defined by an equation that lies on a cycle of the folded graph.  Its
    recurrent parameters are the ones on the delayed edges of that cycle (``W`` on
    h → h in fig. 10.3, on o → h in fig. 10.4; the four gate matrices of an LSTM).
    """
    folded = rec.folded
    computed = [n for n, v in rec.variables.items() if v.kind == "computed"]
    g = nx.DiGraph((u, v) for u, v in folded.edges() if u in computed and v in computed)
    g.add_nodes_from(computed)

    def cycle_params(name):
        for comp in nx.strongly_connected_components(g):
            if name in comp:
                return tuple(dict.fromkeys(
                    d["param"] for u, v, d in folded.edges(data=True)
                    if u in comp and v in comp and d["delay"] != 0 and d["param"]))
        return ()

    if state is not None:
        if state not in computed:
            raise VerifyError(f"{state!r} is not a variable defined by an equation of {rec.name}")
        candidates = [state]
    else:
        candidates = (["h"] if "h" in computed else []) + [n for n in computed if n != "h"]
    for name in candidates:
        params = cycle_params(name)
        if params:
            return name, params
    raise VerifyError(f"{rec.name} has no recurrent matrix: no variable is fed back into itself through a "
                      f"parameter (its steps are linked only through data, e.g. teacher-forced targets), so "
                      f"there is no W to rescale")


@dataclass
class GradientNorms:
    """‖∇_{h^(t)} L^(τ)‖ at lags τ − t = 0, 1, …, τ − 1 (``lags`` and ``norms``)."""

    state: str
    params: tuple[str, ...]
    sigma: float  # the largest singular value of the (first) recurrent matrix, as used
    lags: np.ndarray
    norms: np.ndarray
    label: str = ""


def gradient_norms(rec, steps: int = 40, *, sigma: float | None = None, batch: int = 4, seed: int = 0,
                   sizes: dict | None = None, state: str | None = None) -> GradientNorms:
    """Measure ‖∇_{h^(t)} L^(τ)‖ for t = τ … 1 on random data (``seed``).

    With ``sigma``, every recurrent matrix is first rescaled so that its largest
    singular value is ``sigma``.  The norm is the Frobenius norm over the batch.
    """
    rec = _load(rec, sizes)
    if not rec.losses:
        raise GraphrnnError(f"{rec.name} has no loss: there is no gradient to follow back in time")
    state, params = recurrent_params(rec, state)
    T = int(steps)
    if T < 2:
        raise VerifyError("the gradient-norm plot needs at least 2 steps")
    inputs = rec.random_inputs(T, batch=batch, seed=seed)
    values = rec.init_params(seed=seed)
    if sigma is not None:
        if not sigma > 0:
            raise VerifyError(f"a largest singular value must be positive, not {sigma!r}")
        for p in params:
            top = np.linalg.svd(values[p], compute_uv=False)[0]
            if top > 0:
                values[p] = values[p] * (sigma / top)
    used = float(np.linalg.svd(values[params[0]], compute_uv=False)[0])
    tensors = forward_graph(rec, inputs, values, T)
    last = [tensors[f"{name}[{T}]"] for name in rec.losses if f"{name}[{T}]" in tensors]
    loss = last[0]
    for extra in last[1:]:
        loss = loss + extra
    steps_of_state = [t for t in range(T, 0, -1) if f"{state}[{t}]" in tensors]
    grads = grad(loss, [tensors[f"{state}[{t}]"] for t in steps_of_state], retain_graph=True)
    norms = np.array([0.0 if g is None else float(np.linalg.norm(g)) for g in grads])
    lags = np.array([T - t for t in steps_of_state])
    return GradientNorms(state, params, used, lags, norms)


def plot_gradient_norms(rec, path=None, *, steps: int = 40, sigmas=(0.8, 6.0), batch: int = 16, seed: int = 0,
                        sizes: dict | None = None, state: str | None = None):
    """Draw ‖∇_{h^(t)} L^(τ)‖ against τ − t (log scale) for the spec's parameters and for the
    recurrent matrices rescaled to each of ``sigmas``, with the bound σ_max^(τ−t) dashed.

    Saves to ``path`` when given (the format follows its suffix) and returns the
    matplotlib ``Figure``.  Needs matplotlib (``pip install 'graphrnn[plot]'``).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise VerifyError(f"drawing the gradient norms needs matplotlib: {INSTALL_HINT}") from None
    rec = _load(rec, sizes)
    curves = [gradient_norms(rec, steps, batch=batch, seed=seed, state=state)]
    curves[0].label = f"as initialised (σ_max = {curves[0].sigma:.2f})"
    for s in sigmas:
        c = gradient_norms(rec, steps, sigma=s, batch=batch, seed=seed, state=state)
        c.label = f"rescaled: σ_max = {s:g} ({'below' if s < 1 else 'above' if s > 1 else 'at'} 1)"
        curves.append(c)
    first = curves[0]
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    colours = ["black", "tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple"]
    for i, c in enumerate(curves):
        colour = colours[i % len(colours)]
        norms = np.where(c.norms > 0, c.norms, np.nan)  # log scale: an exact zero cannot be drawn
        ax.semilogy(c.lags, norms, marker="o", markersize=3, color=colour, label=c.label)
        if len(c.params) == 1 and c.sigma < 1 and c.norms[0] > 0:
            # for one recurrent matrix and tanh' ≤ 1, ‖∇h(t)‖ ≤ σ_max^(τ−t) ‖∇h(τ)‖: vanishing is certain
            ax.semilogy(c.lags, c.norms[0] * c.sigma ** c.lags.astype(float), linestyle="--", linewidth=0.9,
                        color=colour, alpha=0.8, label=f"bound for σ_max = {c.sigma:g}: {c.sigma:g}" + r"$^{\tau-t}$ × (value at τ − t = 0)")
    drawn = np.concatenate([c.norms[c.norms > 0] for c in curves])
    if drawn.size:  # the bounds may run off to 1e30: keep the measured curves in view
        ax.set_ylim(drawn.min() / 10, drawn.max() * 10)
    ax.set_xlabel(r"$\tau - t$  (steps back from the last step)")
    ax.set_ylabel(rf"$\|\nabla_{{{first.state}^{{(t)}}}}\, L^{{(\tau)}}\|$")
    which = ", ".join(first.params)
    plural = "matrices" if len(first.params) > 1 else "matrix"
    ax.set_title(f"{rec.name}: the last step's loss carried back in time (recurrent {plural} {which})",
                 fontsize=10)
    if len(first.params) == 1:
        note = ("σ_max < 1: the gradient shrinks at least geometrically (dashed: the bound, since tanh′ ≤ 1). "
                "σ_max > 1 is necessary for it to explode, not sufficient: saturated units (tanh′ ≈ 0) can still "
                "make it vanish; wider layers explode more reliably (e.g. H = 32). Pascanu et al. 2013.")
    else:
        note = ("Each recurrent matrix is rescaled to the same σ_max. With gates and several matrices σ_max no "
                "longer bounds the gradient by itself: the gates decide how much of it flows back (§10.10). "
                "Pascanu et al. 2013.")
    fig.supxlabel("\n".join(textwrap.wrap(note, 140)), x=0.01, ha="left", fontsize=7, color="dimgray")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if path is not None:
        try:
            fig.savefig(path, dpi=130)
        except (OSError, ValueError) as exc:
            raise VerifyError(f"cannot write the plot to {str(path)!r}: {exc}") from None
    return fig
