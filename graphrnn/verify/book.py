"""The book's closed forms of BPTT for the standard RNN (eqs. 10.17–10.28).

:func:`match_standard_rnn` recognises a spec of the shape of fig. 10.3 (whatever
its variables are called)::

    h[t] = tanh(b + W @ h[t-1] + U @ x[t])     # or a[t] = b + ...; h[t] = tanh(a[t])
    o[t] = c + V @ h[t]
    L[t] = cross_entropy(o[t], y[t])

and :func:`book_gradients` evaluates the book's formulas on a run's values, in
float64, with nothing from the engine's backward pass: ∇o from eq. 10.18, ∇h by
the recursion of eqs. 10.19–10.21 from τ down to 1, and the per-step terms of the
parameters' gradients (the dummy copies, eqs. 10.22–10.28).

Eq. 10.21 is printed in the book as Wᵀ (∇_{h^(t+1)} L) diag(1 − (h^(t+1))²), which
does not type-check (a column times a matrix); the diagonal Jacobian of tanh has
to act on the gradient first: Wᵀ diag(1 − (h^(t+1))²) ∇_{h^(t+1)} L.  That is the
order used here.

>>> import graphrnn as gr
>>> form = match_standard_rnn(gr.load("fig10_3"))
>>> (form.h, form.W, form.V, form.a)
('h', 'W', 'V', None)
>>> match_standard_rnn(gr.load("lstm")) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..recurrence.spec import Bin, Call, Name, Ref

#: the note printed wherever eq. 10.21 is used
EQ_10_21_NOTE = ("† eq. 10.21 is printed in the book as Wᵀ (∇_{h(t+1)} L) diag(1 − (h(t+1))²), which does not "
                 "type-check; it is used here in the order Wᵀ diag(1 − (h(t+1))²) ∇_{h(t+1)} L.")

#: the equation of each parameter's gradient, by its role in fig. 10.3
PARAM_EQUATIONS = {"c": "10.22", "b": "10.23", "V": "10.24", "W": "10.25–26", "U": "10.27–28"}


@dataclass(frozen=True)
class StandardRNN:
    """The names a spec gives to the roles of fig. 10.3 (``a`` when a[t] is its own equation)."""

    h: str
    o: str
    L: str
    x: str
    y: str
    W: str
    U: str
    V: str
    b: str
    c: str
    a: str | None = None
    h0: str | None = None  # the parameter holding a learned h[0], if any

    def params(self) -> dict[str, str]:
        """Role -> parameter name, in the book's order (c, b, V, W, U)."""
        return {"c": self.c, "b": self.b, "V": self.V, "W": self.W, "U": self.U}


def _terms(e) -> list:
    """The terms of a sum ``t1 + t2 + ...`` (only ``+``)."""
    if isinstance(e, Bin) and e.op == "+":
        return _terms(e.left) + _terms(e.right)
    return [e]


def _product(e, params):
    """``P @ name[t+k]`` -> (P, Ref) or None."""
    if isinstance(e, Bin) and e.op == "@" and isinstance(e.left, Name) and e.left.name in params \
            and isinstance(e.right, Ref) and e.right.anchor == "t":
        return e.left.name, e.right
    return None


def _affine(e, params):
    """``bias + P1 @ r1 + P2 @ r2 ...`` -> (bias, [(P, Ref), ...]) or None."""
    bias, products = None, []
    for term in _terms(e):
        if isinstance(term, Name) and term.name in params:
            if bias is not None:
                return None
            bias = term.name
        else:
            p = _product(term, params)
            if p is None:
                return None
            products.append(p)
    return (bias, products) if bias is not None else None


def match_standard_rnn(rec) -> StandardRNN | None:
    """The roles of fig. 10.3 in ``rec``, or ``None`` when its equations have another shape."""
    eqs = rec.equations
    if len(rec.losses) != 1 or rec.spec.feedbacks or rec.spec.contexts:
        return None
    if any(eq.anchor != "t" for eq in eqs.values()) or len(eqs) not in (3, 4):
        return None
    params = set(rec.param_shapes)
    L = rec.losses[0]
    loss = eqs[L].expr
    if not (isinstance(loss, Call) and loss.fn == "cross_entropy" and all(isinstance(a, Ref) for a in loss.args)):
        return None
    o_ref, y_ref = loss.args
    if o_ref.offset != 0 or y_ref.offset != 0 or o_ref.name not in eqs:
        return None
    o, y = o_ref.name, y_ref.name
    if rec.variables[y].kind != "target" or not rec.variables[y].is_label:
        return None
    out = _affine(eqs[o].expr, params)
    if out is None or len(out[1]) != 1 or out[1][0][1].offset != 0:
        return None
    c, ((V, h_ref),) = out[0], out[1]
    h = h_ref.name
    if h not in eqs or h in (o, L):
        return None
    act = eqs[h].expr
    if not (isinstance(act, Call) and act.fn == "tanh"):
        return None
    inner, a = act.args[0], None
    if isinstance(inner, Ref) and inner.offset == 0 and inner.name in eqs and inner.name not in (h, o, L):
        a, inner = inner.name, eqs[inner.name].expr
    expected = {h, o, L} | ({a} if a else set())
    if set(eqs) != expected:
        return None
    aff = _affine(inner, params)
    if aff is None or len(aff[1]) != 2:
        return None
    b, products = aff
    rec_terms = [(P, r) for P, r in products if r.name == h and r.offset == -1]
    in_terms = [(P, r) for P, r in products if r.name != h and r.offset == 0]
    if len(rec_terms) != 1 or len(in_terms) != 1:
        return None
    W, U, x = rec_terms[0][0], in_terms[0][0], in_terms[0][1].name
    if rec.variables[x].kind != "input" or len({W, U, V, b, c}) != 5:
        return None
    if rec.param_shapes[b][1] != 1 or rec.param_shapes[c][1] != 1:
        return None
    return StandardRNN(h, o, L, x, y, W, U, V, b, c, a, rec.learned_inits().get(h))


@dataclass
class BookGradients:
    """The book's BPTT, evaluated: per step t, and the parameters' per-step terms.

    ``copies[role][t]`` is step t's term of eq. 10.22–10.28 for the parameter of that
    role (``"W"`` ...); ``totals[role]`` their sum.  ``h0`` is ∇ of a learned h[0]
    (eq. 10.21 carried one step further: not in the book, which starts from h[0] = 0).
    """

    dL: dict[int, np.ndarray]
    o: dict[int, np.ndarray]
    h: dict[int, np.ndarray]
    copies: dict[str, dict[int, np.ndarray]]
    totals: dict[str, np.ndarray]
    h0: np.ndarray | None = None


def _softmax(o: np.ndarray) -> np.ndarray:
    e = np.exp(o - o.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def book_gradients(form: StandardRNN, values: dict, T: int) -> BookGradients:
    """Eqs. 10.17–10.28 on a run's ``values`` (keyed like ``Run.values``: ``"h[3]"``, ``"W"``).

    Vectors are columns and a batch is a matrix of columns; the loss is summed over
    the batch, so the parameters' terms sum over it too (as the matrix products do).
    """
    f64 = lambda k: np.asarray(values[k], dtype=np.float64)  # noqa: E731
    W, V = f64(form.W), f64(form.V)
    h = {t: f64(f"{form.h}[{t}]") for t in range(0, T + 1)}
    h[0] = np.broadcast_to(h[0], h[1].shape)  # a learned h[0] is one column shared by the batch
    x = {t: f64(f"{form.x}[{t}]") for t in range(1, T + 1)}
    o = {t: f64(f"{form.o}[{t}]") for t in range(1, T + 1)}
    y = {t: np.asarray(values[f"{form.y}[{t}]"]).astype(np.intp) for t in range(1, T + 1)}

    dL = {t: np.ones(()) for t in range(1, T + 1)}                      # eq. 10.17
    g_o = {}
    for t in range(1, T + 1):                                            # eq. 10.18: ŷ − 1_{i = y}
        g = _softmax(o[t])
        g[y[t], np.arange(g.shape[1])] -= 1.0
        g_o[t] = g
    g_h = {T: V.T @ g_o[T]}                                              # eq. 10.19
    for t in range(T - 1, 0, -1):                                        # eq. 10.21 (†: corrected order)
        g_h[t] = W.T @ ((1.0 - h[t + 1] ** 2) * g_h[t + 1]) + V.T @ g_o[t]
    d_a = {t: (1.0 - h[t] ** 2) * g_h[t] for t in range(1, T + 1)}      # diag(1 − h²) ∇h
    copies = {
        "c": {t: g_o[t].sum(axis=1, keepdims=True) for t in g_o},        # eq. 10.22
        "b": {t: d_a[t].sum(axis=1, keepdims=True) for t in d_a},        # eq. 10.23
        "V": {t: g_o[t] @ h[t].T for t in g_o},                          # eq. 10.24
        "W": {t: d_a[t] @ h[t - 1].T for t in d_a},                      # eq. 10.26
        "U": {t: d_a[t] @ x[t].T for t in d_a},                          # eq. 10.28
    }
    totals = {role: sum(per[t] for t in range(1, T + 1)) for role, per in copies.items()}
    h0 = None
    if form.h0 is not None:  # a learned h[0]: one more step of eq. 10.21, summed over the batch
        h0 = (W.T @ d_a[1]).sum(axis=1, keepdims=True)
    return BookGradients(dL, g_o, g_h, copies, totals, h0)
