"""Print a lowered recurrence (:class:`~.ir.Program`) as a standalone PyTorch module.

The file defines ``make_model(params) -> torch.nn.Module``; the module's ``forward(inputs)`` returns the total
loss as graphrnn computes it (the sum over the steps of the per-step losses, each summed over the batch, eq.
10.13).  Each variable is a ``Steps`` dictionary keyed by the step t, so every equation reads as the spec:
``h[t] = torch.tanh(b + W @ h[t - 1] + U @ x[t])``; a step outside the computed range reads as the
variable's initial value (zero, or a learned ``h0``), as in graphrnn.
"""

from __future__ import annotations

from .ir import ExportError, Program
from .printer import Names, comment, docstring_block, expression, header, offset_text

#: the notation's functions as PyTorch calls (those not here are helpers defined in the file)
_CALLS = {
    "tanh": "torch.tanh({0})", "sigmoid": "torch.sigmoid({0})", "relu": "torch.relu({0})",
    "exp": "torch.exp({0})", "log": "torch.log({0})",
    "softmax": "torch.softmax({0}, 0)", "log_softmax": "torch.log_softmax({0}, 0)",
}

#: helpers: name -> source (``{torch}`` is the module's name in the file)
_HELPERS = {
    "cross_entropy": '''
def cross_entropy(o, y):
    """-log softmax(o)[y] for each column (each sequence), summed over the batch (eqs. 10.11-10.12)."""
    return torch.nn.functional.cross_entropy(o.T, y, reduction="sum")  # torch wants one row per sequence
''',
    "mse": '''
def mse(a, z):
    """The mean over a column's entries of (a - z)^2, summed over the batch."""
    d = a - z
    return (d * d).sum() / (a.shape[0] if a.dim() == 2 else 1)
''',
    "bce_with_logits": '''
def bce_with_logits(s, z):
    """Binary cross-entropy of sigmoid(s) against z in [0, 1], summed: log(1 + e^s) - s z, computed stably."""
    return (torch.logaddexp(s, torch.zeros_like(s)) - s * z).sum()
''',
    "one_hot": '''
def one_hot(y, classes, dtype):
    """Class labels (B,) as one-hot columns (classes, B)."""
    return torch.nn.functional.one_hot(y, classes).T.to(dtype)
''',
    "argmax": '''
def argmax(o):
    """The class with the largest score in each column (no gradient)."""
    return torch.argmax(o, 0)
''',
    "feed": '''
def feed(value):
    """What free-running mode feeds back: the model's own output, without gradient (fig. 10.6)."""
    return value.detach()
''',
}

_STEPS = '''
class Steps(dict):
    """One variable's values by step t.  A step that is neither computed (1..T; T alone for a [tau]
    variable) nor in the data reads as ``initial``: zero, or a learned initial state, as in graphrnn."""

    def __init__(self, name, initial, computed, data=None):
        super().__init__()
        self.name, self.initial, self.computed, self.data = name, initial, computed, data

    def __missing__(self, s):
        if self.data is not None and 1 <= s <= len(self.data):
            return self.data[s - 1]
        if self.initial is None or s in self.computed:
            covered = f"the data covers steps 1..{len(self.data)}" if self.data is not None else "it is not computed"
            raise LookupError(f"{self.name}[{s}] is needed but {covered}"
                              + ("; declare `init ... = zero` in the spec to read zero there" if self.initial
                                 is None else ""))
        return self.initial
'''


def to_torch(program: Program) -> str:
    """The PyTorch source of ``program`` (see the module docstring)."""
    return _TorchPrinter(program).source()


class _TorchPrinter:
    def __init__(self, program: Program):
        self.p = program
        helpers = set(_HELPERS) | {"Steps", "Model", "make_model", "PARAMETERS", "torch", "inputs", "self",
                                   "T", "B", "t", "params", "device", "dtype", "zeros", "as_data", "total"}
        self.ns = Names(program.names, helpers)
        self._check_attribute_names()

    def _check_attribute_names(self) -> None:
        try:
            import torch
        except ImportError:  # the source can be written without torch; the clash is then found when it runs
            return
        for name in self.p.params:
            if hasattr(torch.nn.Module, name) or "." in name:
                raise ExportError(f"parameter {name!r} has the name of an attribute every torch.nn.Module has, "
                                  f"so it cannot be registered under that name; rename it in the spec",
                                  variable=name)

    # -- expressions -----------------------------------------------------------------------
    def _read(self, ref) -> str:
        base = "T" if ref.anchor == "tau" else "t"
        return f"{self.ns[ref.name]}[{offset_text(base, ref.offset)}]"

    def _call(self, fn, args) -> str:
        if fn in _CALLS:
            return _CALLS[fn].format(*args)
        if fn == "one_hot":  # (labels, number of classes) from the lowering, and the run's float type
            args = [args[0], str(int(float(args[1]))), "dtype"]
        return f"{fn}({', '.join(args)})"

    def _expr(self, e) -> str:
        return expression(e, self._read, lambda n: self.ns[n], self._call)

    # -- the file ------------------------------------------------------------------------------
    def source(self) -> str:
        p = self.p
        out = [self._docstring(), "", "import torch", "", "#: the spec's parameters and their shapes (rows, columns)",
               "PARAMETERS = {" + ", ".join(f"{n!r}: {s!r}" for n, s in p.params.items()) + "}", ""]
        for fn, text in _HELPERS.items():
            if p.uses(fn):
                out += ["", text.strip("\n"), ""]
        out += ["", _STEPS.strip("\n"), "", ""]
        out += self._model()
        out += ["", "", "def make_model(params):",
                '    """The recurrence as a torch.nn.Module holding ``params`` (name -> array of the shape in '
                'PARAMETERS)."""',
                "    return Model(params)", ""]
        return "\n".join(out)

    def _docstring(self) -> str:
        p = self.p
        title, mode, layout = header(p)
        return "\n".join([
            f'"""{title}',
            "",
            f"Exported from graphrnn (`graphrnn export --to torch`); mode: {mode}.",
            "Standalone: it needs torch only.  Contract:",
            "",
            "    model = make_model(params)     # params: name -> array, shapes as in PARAMETERS",
            "    loss = model(inputs)           # the total loss, the sum over t of " + " + ".join(
                f"{n}[{'t' if a == 't' else 'tau'}]" for n, a in p.losses) + (" (eq. 10.13)" if p.losses else ""),
            "    loss.backward()                # gradients in model.named_parameters(), named as in the spec",
            "",
            "inputs (graphrnn's layout, B sequences side by side):",
            *[f"    {line}" for line in layout],
            "",
            "The spec:",
            "",
            docstring_block(p.text),
            '"""',
        ])

    def _model(self) -> list[str]:
        p, ns = self.p, self.ns
        lines = [
            "class Model(torch.nn.Module):",
            f'    """{p.name} as a module: forward(inputs) returns the total loss as graphrnn computes it."""',
            "",
            "    def __init__(self, params):",
            "        super().__init__()",
            "        for name, shape in PARAMETERS.items():",
            "            if name not in params:",
            "                raise KeyError(f\"missing parameter {name!r} of shape {shape}\")",
            "            value = torch.as_tensor(params[name]).detach().clone()",
            "            if value.dim() == 1 and shape[1] == 1:",
            "                value = value[:, None]  # a column given flat",
            "            if tuple(value.shape) != shape:",
            "                raise ValueError(f\"parameter {name!r} has shape {tuple(value.shape)}, the spec needs "
            "{shape}\")",
            "            self.register_parameter(name, torch.nn.Parameter(value))",
            "",
            "    def forward(self, inputs, T=None):",
            '        """The total loss on ``inputs``; ``T`` defaults to the number of steps the data covers."""',
        ]
        body = []
        if p.params:
            locals_ = ", ".join(ns[n] for n in p.params)
            body.append(f"{locals_} = "
                        + ", ".join(f"self.{n}" if n.isidentifier() else f"getattr(self, {n!r})" for n in p.params)
                        + "  # the spec's parameters")
            body.append("dtype, device = self.{0}.dtype, self.{0}.device".format(next(iter(p.params))))
        else:
            body.append("dtype, device = torch.float64, None")
        body.append("")
        body.append("# the data, in graphrnn's layout")
        for d in p.data:
            ndim = 2 if d.kind == "context" else (2 if d.classes is not None else 3)
            dtype = "torch.long" if d.classes is not None else "dtype"
            body.append(f"{ns[d.name]} = as_data(inputs[{d.name!r}], {ndim}, {dtype}, device)  # {self._shape(d)}")
        batch_source = next((d for d in p.data), None)
        body.append(f"B = {ns[batch_source.name]}.shape[-1]  # the number of sequences"
                    if batch_source else "B = 1")
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
        body.append("")
        body.append("# every variable by step; out of range: its initial value")
        for d in per_step:
            init = self._zero(d.rows, d.classes) if d.init else "None"
            body.append(f"{ns[d.name]} = Steps({d.name!r}, {init}, range(1, T + 1), data={ns[d.name]})")
        for name, v in p.variables.items():
            if v.param:
                init = ns[v.param]
                what = f"learned: {v.param}"
            else:
                init = self._zero(v.rows, v.classes)
                what = "zero"
            computed = "range(1, T + 1)" if v.anchor == "t" else "range(T, T + 1)"
            body.append(f"{ns[name]} = Steps({name!r}, {init}, {computed})  # outside the steps: {what}")
        for loop in p.loops:
            body.append("")
            body += self._loop(loop)
        if p.last:
            body.append("")
            body.append("# the last step only (tau = T)")
            for d in p.last:
                body.append(self._line(f"{ns[d.name]}[T] = {self._expr(d.expr)}", d.text))
        body.append("")
        if p.losses:
            terms = [f"sum({ns[n]}[t] for t in range(1, T + 1))" if a == "t" else f"{ns[n]}[T]" for n, a in p.losses]
            body.append("return " + " + ".join(terms) + "  # the total loss (eq. 10.13)")
        else:
            body.append("raise ValueError(\"this recurrence declares no loss: there is nothing to return\")")
        lines += ["        " + line if line else "" for line in body]
        return lines + ["", "", _AS_DATA.strip("\n")]

    def _shape(self, d) -> str:
        if d.kind == "context":
            return f"({d.rows}, B): one column per sequence"
        if d.classes is not None:
            return f"(T, B): class labels in 0..{d.classes - 1}"
        return f"(T, {d.rows}, B)"

    def _zero(self, rows, classes) -> str:
        if classes is not None:
            return "torch.zeros(B, dtype=torch.long, device=device)"
        if rows is None:
            return "torch.zeros((), dtype=dtype, device=device)"
        return f"torch.zeros({rows}, B, dtype=dtype, device=device)"

    def _loop(self, loop) -> list[str]:
        ns = self.ns
        if loop.direction > 0:
            head = "for t in range(1, T + 1):"
            what = "forward in time"
        else:
            head = "for t in range(T, 0, -1):"
            what = "backward in time (from the last step to the first)"
        lines = [f"# {', '.join(loop.names)}: {what}", head]
        for d in loop.defs:
            lines.append("    " + self._line(f"{ns[d.name]}[t] = {self._expr(d.expr)}", d.text))
        return lines

    @staticmethod
    def _line(code: str, spec_line: str) -> str:
        return f"{code}  {comment(spec_line)}"


_AS_DATA = '''
def as_data(value, ndim, dtype, device):
    """An input as a tensor with ``ndim`` axes (one sequence may be given without its batch axis)."""
    value = torch.as_tensor(value, device=device)
    if value.dim() == ndim - 1:
        value = value[..., None]
    if value.dim() != ndim:
        raise ValueError(f"expected an array with {ndim} axes in graphrnn's layout, got shape {tuple(value.shape)}")
    return value.to(dtype)
'''

