"""Print a lowered recurrence (:class:`~.ir.Program`) as a standalone JAX loss function.

The file defines ``loss_fn(params, inputs)``, the total loss as graphrnn computes it; ``jax.jit(loss_fn)`` and
``jax.grad(loss_fn)`` work on it.  Each loop of the program is one ``jax.lax.scan`` (``reverse=True`` for a
variable that runs backward in time): the carry holds the last k values of each variable that is read k steps
back, the scanned inputs are the other variables' values at t+k, stacked over t.  Each equation is one line
of the step function, with the spec's line as a comment: ``h_t = jnp.tanh(b + W @ h_tm1 + U @ x_t)``.
"""

from __future__ import annotations

from .ir import Program
from .printer import Names, comment, docstring_block, expression, header

_CALLS = {
    "tanh": "jnp.tanh({0})", "sigmoid": "jax.nn.sigmoid({0})", "relu": "jax.nn.relu({0})",
    "exp": "jnp.exp({0})", "log": "jnp.log({0})",
    "softmax": "jax.nn.softmax({0}, axis=0)", "log_softmax": "jax.nn.log_softmax({0}, axis=0)",
}

_HELPERS = {
    "cross_entropy": '''
def cross_entropy(o, y):
    """-log softmax(o)[y] for each column (each sequence), summed over the batch (eqs. 10.11-10.12)."""
    return -jnp.take_along_axis(jax.nn.log_softmax(o, axis=0), y[None], axis=0).sum()
''',
    "mse": '''
def mse(a, z):
    """The mean over a column's entries of (a - z)^2, summed over the batch."""
    d = a - z
    return (d * d).sum() / (a.shape[0] if a.ndim == 2 else 1)
''',
    "bce_with_logits": '''
def bce_with_logits(s, z):
    """Binary cross-entropy of sigmoid(s) against z in [0, 1], summed: log(1 + e^s) - s z, computed stably."""
    return (jnp.logaddexp(s, 0.0) - s * z).sum()
''',
    "one_hot": '''
def one_hot(y, classes, dtype):
    """Class labels (B,) as one-hot columns (classes, B)."""
    return jax.nn.one_hot(y, classes, axis=0, dtype=dtype)
''',
    "argmax": '''
def argmax(o):
    """The class with the largest score in each column (no gradient)."""
    return jnp.argmax(o, axis=0)
''',
    "feed": '''
def feed(value):
    """What free-running mode feeds back: the model's own output, without gradient (fig. 10.6)."""
    return jax.lax.stop_gradient(value)
''',
}

_STEPS = '''
class Steps:
    """One variable's values at steps first, first + 1, ... stacked on axis 0.  A step outside them reads as
    ``initial`` (zero, or a learned initial state, as in graphrnn); ``protected`` steps may not (the data's
    steps 1..T).  Steps and offsets are Python numbers, so every slice has a static shape under jit."""

    def __init__(self, name, values, first, initial, protected=range(0)):
        self.name, self.values, self.first, self.initial, self.protected = name, values, first, initial, protected

    def window(self, k, T):
        """The values at t + k for t = 1..T, stacked on axis 0."""
        last = self.first + len(self.values) - 1
        a, b = max(1 + k, self.first), min(T + k, last)
        parts = [self._outside(1 + k, min(T + k, self.first - 1))]
        if a <= b:
            parts.append(self.values[a - self.first:b - self.first + 1])
        parts.append(self._outside(max(1 + k, last + 1), T + k))
        return jnp.concatenate([p for p in parts if p is not None], axis=0)

    def at(self, s):
        """The value at step s."""
        return self.window(s - 1, 1)[0]

    def _outside(self, lo, hi):
        if lo > hi:
            return None
        bad = [s for s in range(lo, hi + 1) if s in self.protected or self.initial is None]
        if bad:
            raise LookupError(f"{self.name}[{bad[0]}] is needed but the data covers steps "
                              f"{self.first}..{self.first + len(self.values) - 1}; declare `init ... = zero` in "
                              f"the spec to read zero before step 1")
        shape = self.values.shape[1:]
        return jnp.broadcast_to(self.initial, (hi - lo + 1,) + shape).astype(self.values.dtype)
'''


def to_jax(program: Program) -> str:
    """The JAX source of ``program`` (see the module docstring)."""
    return _JaxPrinter(program).source()


class _JaxPrinter:
    def __init__(self, program: Program):
        self.p = program
        reserved = set(_HELPERS) | {"Steps", "loss_fn", "PARAMETERS", "jax", "jnp", "params", "inputs", "T", "B",
                                    "t", "dtype", "carry", "xs", "total", "as_data"}
        self.ns = Names(program.names, reserved)
        self.init: dict[str, str] = {}

    # -- expressions -----------------------------------------------------------------------
    def _call(self, fn, args) -> str:
        if fn in _CALLS:
            return _CALLS[fn].format(*args)
        if fn == "one_hot":  # (labels, number of classes) from the lowering, and the run's float type
            args = [args[0], str(int(float(args[1]))), "dtype"]
        return f"{fn}({', '.join(args)})"

    def _expr(self, e, read) -> str:
        return expression(e, read, lambda n: self.ns[n], self._call)

    @staticmethod
    def _suffix(k: int) -> str:
        return "t" if k == 0 else (f"tm{-k}" if k < 0 else f"tp{k}")

    # -- the file ------------------------------------------------------------------------------
    def source(self) -> str:
        p = self.p
        out = [self._docstring(), "", "import jax", "import jax.numpy as jnp", "",
               "#: the spec's parameters and their shapes (rows, columns)",
               "PARAMETERS = {" + ", ".join(f"{n!r}: {s!r}" for n, s in p.params.items()) + "}", ""]
        for fn, text in _HELPERS.items():
            if p.uses(fn):
                out += ["", text.strip("\n"), ""]
        out += ["", _STEPS.strip("\n"), "", ""]
        out += self._loss_fn()
        out += ["", "", _AS_DATA.strip("\n"), ""]
        return "\n".join(out)

    def _docstring(self) -> str:
        p = self.p
        title, mode, layout = header(p)
        losses = " + ".join(f"{n}[{'t' if a == 't' else 'tau'}]" for n, a in p.losses)
        return "\n".join([
            f'"""{title}',
            "",
            f"Exported from graphrnn (`graphrnn export --to jax`); mode: {mode}.",
            "Standalone: it needs jax only.  Contract:",
            "",
            f"    loss = loss_fn(params, inputs)   # the total loss, the sum over t of {losses} (eq. 10.13)",
            "    grads = jax.grad(loss_fn)(params, inputs)   # also under jax.jit",
            "",
            "params: name -> array, shapes as in PARAMETERS.  For graphrnn's float64 results, enable 64-bit",
            "floats first: jax.config.update(\"jax_enable_x64\", True).",
            "",
            "inputs (graphrnn's layout, B sequences side by side):",
            *[f"    {line}" for line in layout],
            "",
            "The spec:",
            "",
            docstring_block(p.text),
            '"""',
        ])

    def _zero(self, rows, classes) -> str:
        if classes is not None:
            return "jnp.zeros((B,), dtype=jnp.argmax(jnp.zeros(1)).dtype)"
        if rows is None:
            return "jnp.zeros((), dtype)"
        return f"jnp.zeros(({rows}, B), dtype)"

    def _loss_fn(self) -> list[str]:
        p, ns = self.p, self.ns
        lines = ["def loss_fn(params, inputs, T=None):",
                 f'    """The total loss of {p.name} on ``inputs`` (``T`` defaults to the steps the data covers)."""']
        body = []
        if p.params:
            names = list(p.params)
            body.append("# the spec's parameters (rows, columns)")
            for n in names:
                body.append(f"{ns[n]} = jnp.reshape(params[{n!r}], {p.params[n]!r})")
            body.append("dtype = jnp.result_type(" + ", ".join(ns[n] for n in names) + ")")
        else:
            body.append("dtype = jnp.result_type(float)")
        body += ["", "# the data, in graphrnn's layout"]
        for d in p.data:
            ndim = 2 if d.kind == "context" else (2 if d.classes is not None else 3)
            dtype = "None" if d.classes is not None else "dtype"
            body.append(f"{ns[d.name]} = as_data(inputs[{d.name!r}], {ndim}, {dtype})  # {self._shape(d)}")
        first = next(iter(p.data), None)
        body.append(f"B = {ns[first.name]}.shape[-1]  # the number of sequences" if first else "B = 1")
        per_step = [d for d in p.data if d.kind != "context"]
        body.append("if T is None:  # the longest unroll the data covers (a variable read at t+k needs k more steps)")
        if per_step:
            lengths = [f"len({ns[d.name]})" + (f" - {d.ahead}" if d.ahead > 0 else f" + {-d.ahead}" if d.ahead < 0
                                                 else "") for d in per_step]
            body.append("    T = " + (lengths[0] if len(lengths) == 1 else "min(" + ", ".join(lengths) + ")"))
        else:
            body.append("    raise ValueError(\"no per-step data to take the number of steps from; pass T\")")
        body.append("if T < 1:")
        body.append("    raise ValueError(f\"the data is too short for a single step (T = {T})\")")
        for d in per_step:
            init = self._zero(d.rows, d.classes) if d.init else "None"
            body.append(f"{ns[d.name]} = Steps({d.name!r}, {ns[d.name]}, 1, {init}, protected=range(1, T + 1))")
        body += ["", "# each variable's value outside the steps"]
        for name, v in p.variables.items():
            local = self.init[name] = ns.fresh(f"{ns[name]}_init")
            if v.param:
                rows = v.rows
                body.append(f"{local} = jnp.broadcast_to({ns[v.param]}, ({rows}, B))  # learned: {v.param}")
            else:
                body.append(f"{local} = {self._zero(v.rows, v.classes)}")
        for i, loop in enumerate(p.loops):
            body.append("")
            body += self._scan(loop, i)
        if p.last:
            body += ["", "# the last step only (tau = T)"]
            for d in p.last:
                body.append(f"{ns[d.name]}_T = {self._expr(d.expr, self._last_read)}  {comment(d.text)}")
        body.append("")
        if p.losses:
            terms = [f"jnp.sum({ns[n]}.values)" if a == "t" else f"{ns[n]}_T" for n, a in p.losses]
            body.append("return " + " + ".join(terms) + "  # the total loss (eq. 10.13)")
        else:
            body.append("raise ValueError(\"this recurrence declares no loss: there is nothing to return\")")
        return lines + ["    " + line if line else "" for line in body]

    def _shape(self, d) -> str:
        if d.kind == "context":
            return f"({d.rows}, B): one column per sequence"
        if d.classes is not None:
            return f"(T, B): class labels in 0..{d.classes - 1}"
        return f"(T, {d.rows}, B)"

    def _last_read(self, ref) -> str:
        var = self.p.variables.get(ref.name)
        if var is not None and var.anchor == "tau":  # computed at step T only; any other step is initial
            return f"{self.ns[ref.name]}_T" if ref.offset == 0 else self.init[ref.name]
        k = ref.offset
        return f"{self.ns[ref.name]}.at(T{f' + {k}' if k > 0 else f' - {-k}' if k < 0 else ''})"

    def _scan(self, loop, index: int) -> list[str]:
        ns = self.ns
        sign = loop.direction
        inside = set(loop.names)
        step = ns.fresh(f"step_{ns[loop.names[0]]}")
        outer = set(ns.taken)  # the step function's locals are its own: the next scan may reuse them
        carried = [(d.name, j) for d in loop.defs for j in range(1, d.depth + 1)]
        local = {}
        for name, j in carried:  # h[t-1] (forward) or h[t+1] (backward)
            local[(name, -sign * j)] = ns.fresh(f"{ns[name]}_{self._suffix(-sign * j)}")
        for d in loop.defs:
            local[(d.name, 0)] = ns.fresh(f"{ns[d.name]}_{self._suffix(0)}")
        outside = loop.outside_reads()
        for name, k in outside:
            local[(name, k)] = ns.fresh(f"{ns[name]}_{self._suffix(k)}")

        def read(ref):
            return local[(ref.name, ref.offset)]

        what = "forward in time, t = 1..T" if sign > 0 else "backward in time, t = T..1 (a reversed scan)"
        lines = [f"# {', '.join(loop.names)}: {what}", f"def {step}(carry, xs):"]
        if carried:
            lines.append("    " + ", ".join(local[(n, -sign * j)] for n, j in carried) + ("," if len(carried) == 1
                                                                                              else "")
                         + " = carry  # " + ", ".join(f"{n}[t{-sign * j:+d}]" for n, j in carried))
        if outside:
            lines.append("    " + ", ".join(local[r] for r in outside) + ("," if len(outside) == 1 else "")
                         + " = xs  # " + ", ".join(f"{n}[t{k:+d}]" if k else f"{n}[t]" for n, k in outside))
        for d in loop.defs:
            lines.append(f"    {local[(d.name, 0)]} = {self._expr(d.expr, read)}  {comment(d.text)}")
        new_carry = []
        for name, j in carried:
            new_carry.append(local[(name, 0)] if j == 1 else local[(name, -sign * (j - 1))])
        outs = [local[(n, 0)] for n in loop.names]
        lines.append("    return (" + ", ".join(new_carry) + ("," if len(new_carry) == 1 else "") + "), ("
                     + ", ".join(outs) + ("," if len(outs) == 1 else "") + ")")
        init = [self.init[n] for n, _ in carried]
        xs = [f"{ns[n]}.window({k}, T)" for n, k in outside]
        targets = ", ".join(ns[n] for n in loop.names) + ("," if len(loop.names) == 1 else "")
        lines.append(f"_, ({targets}) = jax.lax.scan({step}, (" + ", ".join(init) + ("," if len(init) == 1 else "")
                     + "), (" + ", ".join(xs) + ("," if len(xs) == 1 else "") + "), length=T"
                     + (", reverse=True" if sign < 0 else "") + ")")
        for n in loop.names:
            lines.append(f"{ns[n]} = Steps({n!r}, {ns[n]}, 1, {self.init[n]})")
        ns.taken = outer
        return lines


_AS_DATA = '''
def as_data(value, ndim, dtype):
    """An input as an array with ``ndim`` axes (one sequence may be given without its batch axis)."""
    value = jnp.asarray(value, dtype)
    if value.ndim == ndim - 1:
        value = value[..., None]
    if value.ndim != ndim:
        raise ValueError(f"expected an array with {ndim} axes in graphrnn's layout, got shape {value.shape}")
    return value
'''
