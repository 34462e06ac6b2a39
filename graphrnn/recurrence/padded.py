"""Variable-length batches in the notation: a recurrence rewritten with per-step masks.

Sequences of different lengths share a batch by padding: sequence b's data fills its first
n_b steps (plus what the spec reads beyond, ``y[t+1]``), whatever follows is padding.  Rather
than teaching each runtime strategy about lengths, :func:`padded` rewrites the recurrence
itself, in its own notation, so that every strategy runs it unchanged.  A mask ``m[t]`` (a data
input: 1 at a sequence's steps 1..n_b, 0 after) enters the equations:

* a state that runs forwards (read at an earlier step, ``h[t-1]``) holds its value after the last
  real step: ``h[t] = m[t] * (...) + (1 - m[t]) * h[t-1]``, so ``h[tau]`` and the final state are
  each sequence's own;
* a read of a later step of a computed variable (``g[t+1]``, fig. 10.11) sees the variable's
  initial value after each sequence's own last step: ``m[t+1] * g[t+1]`` (zero initial value);
* a loss of every step adds exactly nothing at a padded step, with exactly zero gradient: its
  arguments are replaced there by values where the loss is exactly 0 (``mse(m*o, m*y)``;
  ``cross_entropy`` and ``bce_with_logits`` of logits saturated at the target, whose softmax or
  sigmoid is exactly 1 in floating point);
* an equation of the last step reads each sequence's own last step: data at ``[tau+k]`` becomes
  an input holding each sequence's step n_b+k at step tau (filled by the runtime), and a computed
  value at ``[tau+k]`` that does not hold by itself is carried by a held copy (``v[t+k]``
  captured while the sequence lasts).

Masks are columns of ones and zeros, one per row count the equations need (the notation's
``*`` multiplies equal shapes).  What cannot be rewritten is refused with a :class:`SpecError`
naming the construct.

>>> import graphrnn as gr
>>> p = padded(gr.load("fig10_3"))
>>> print(p.rec.equations["h"].text)
h[t] = (mask_5[t] * tanh(((b + (W @ h[t-1])) + (U @ x[t])))) + ((1 - mask_5[t]) * h[t-1])
>>> p.masks
{'mask_5': 5, 'mask_4': 4}
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import networkx as nx

from ..errors import SpecError
from .spec import LOSSES, Bin, Call, Name, Num, Ref, Transpose, Unary, references

#: logits this large make softmax and sigmoid exactly 1 at the target (exp(-1e4) is 0 in float32 too)
SATURATED = 10000.0


@dataclass
class Padded:
    """A recurrence rewritten for variable-length batches, and what its runs need.

    ``rec`` is the rewritten recurrence; ``masks`` maps each mask input to its rows;
    ``at_tau`` maps each input standing for a data read at the last step to ``(data, k)``
    (it holds, at step tau, each sequence's step n_b + k of ``data``); ``tied`` maps each
    parameter the rewrite added to the learned initial value it stands for (``g0`` read after
    a sequence's end, ``g[t+1]``): a run gives it that value, and adds its gradient to that
    value's; ``held`` names the variables that hold their value after a sequence's end (so at
    step T each holds its value of the sequence's last step); ``hidden`` names the variables
    and parameters the rewrite added."""

    rec: object
    masks: dict = field(default_factory=dict)
    at_tau: dict = field(default_factory=dict)
    tied: dict = field(default_factory=dict)
    held: set = field(default_factory=set)
    hidden: set = field(default_factory=set)
    #: data inputs the rewrite added as copies of others (name -> the data it copies): the true
    #: labels a padded loss saturates at, which free running must not replace by the fed value
    copies: dict = field(default_factory=dict)
    #: why free running or scheduled sampling cannot run padded (None: they can)
    not_free: str | None = None


def text_of(e) -> str:
    """An expression written back in the notation, fully parenthesized."""
    if isinstance(e, Num):
        return repr(float(e.value))
    if isinstance(e, Name):
        return e.name
    if isinstance(e, Ref):
        base = "tau" if e.anchor == "tau" else "t"
        return f"{e.name}[{base}{e.offset:+d}]" if e.offset else f"{e.name}[{base}]"
    if isinstance(e, Unary):
        return f"({e.op}{text_of(e.operand)})"
    if isinstance(e, Transpose):
        return f"({text_of(e.operand)}).T"
    if isinstance(e, Bin):
        return f"({text_of(e.left)} {e.op} {text_of(e.right)})"
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(text_of(a) for a in e.args)})"
    raise AssertionError(f"cannot write {e!r}")


def _refuse(rec, what: str, line=None, variable=None):
    return SpecError(f"lengths= cannot be used with {rec.name}: {what}", line, variable=variable,
                     source=rec.source)


def _directions(rec) -> dict[str, int]:
    """+1 for a variable of a group whose cycles run forwards in time, -1 backwards, 0 on no cycle."""
    g = nx.DiGraph()
    g.add_nodes_from(rec.equations)
    delays: dict = {}
    for name, eq in rec.equations.items():
        for ref in references(eq.expr):
            if ref.name in rec.equations and ref.anchor == "t":
                g.add_edge(ref.name, name)
                delays.setdefault((ref.name, name), set()).add(ref.delay)
    out = {}
    for group in nx.strongly_connected_components(g):
        inner = {d for (u, v), ds in delays.items() if u in group and v in group for d in ds}
        out.update({v: (-1 if any(d < 0 for d in inner) else 1 if inner else 0) for v in group})
    return out


class _Rewrite:
    def __init__(self, rec):
        self.rec = rec
        self.taken = set(rec.variables) | set(rec.all_param_shapes()) | set(rec.sizes)
        self.out = Padded(rec=None)
        self.lags: dict = {}  # (variable, k) -> lag variable
        self.directions = _directions(rec)

    def fresh(self, base: str) -> str:
        name = base
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        self.out.hidden.add(name)
        return name

    def mask(self, rows: int, line, variable) -> str:
        if rows is None:
            raise _refuse(self.rec, f"{variable} is not a column of numbers, so no mask can hold it", line, variable)
        for name, r in self.out.masks.items():
            if r == rows:
                return name
        name = self.fresh(f"mask_{rows}")
        self.out.masks[name] = rows
        return name

    def rows_of(self, loss, eq) -> int:
        """The rows of the columns a loss compares (its classes for cross_entropy)."""
        a, y = loss.args
        if loss.fn == "cross_entropy":
            if isinstance(y, Ref) and self.rec.variables[y.name].is_label:
                return self.rec.variables[y.name].classes
            raise _refuse(self.rec, f"the target `{y.text}` of cross_entropy is not class labels read at a step "
                          f"(such as `y[t]`)", eq.line, eq.name)
        rows = self._rows(y) or self._rows(a)
        if rows is None:
            raise _refuse(self.rec, f"the rows of `{loss.text}` cannot be told", eq.line, eq.name)
        return rows

    def _rows(self, e):
        """The rows of a column-valued expression, or None where they cannot be told from its parts."""
        if isinstance(e, Ref):
            var = self.rec.variables[e.name]
            return var.classes if var.is_label else var.rows
        shapes = self.rec.all_param_shapes()
        if isinstance(e, Name):
            return shapes[e.name][0] if e.name in shapes else self.rec.variables[e.name].rows
        if isinstance(e, Bin) and e.op == "@":
            left = e.left
            if isinstance(left, Transpose) and isinstance(left.operand, Name) and left.operand.name in shapes:
                return shapes[left.operand.name][1]
            return shapes[left.name][0] if isinstance(left, Name) and left.name in shapes else None
        if isinstance(e, Call) and e.fn == "one_hot":
            return self._rows(e.args[0])
        if isinstance(e, Call) and e.fn not in ("argmax", "sample"):
            return self._rows(e.args[0])
        if isinstance(e, Bin):
            return self._rows(e.left) or self._rows(e.right)
        if isinstance(e, Unary):
            return self._rows(e.operand)
        return None

    # ------------------------------------------------------------------ every step
    def later_reads(self, e, eq):
        """``v[t+k]`` (k > 0) of a computed variable -> the initial value after each sequence's last step."""
        if isinstance(e, Ref):
            var = self.rec.variables[e.name]
            if e.anchor == "t" and e.offset > 0 and e.name in self.rec.equations:
                m = self.mask(var.rows, eq.line, e.name)
                if var.init == "learned":  # the learned value, as a parameter tied to it (see Padded.tied)
                    learned = self.rec.learned_inits()[e.name]
                    tied = next((p for p, q in self.out.tied.items() if q == learned), None)
                    if tied is None:
                        tied = self.fresh(f"{learned}_after")
                        self.out.tied[tied] = learned
                    return f"(({m}[t{e.offset:+d}] * {text_of(e)}) + ((1 - {m}[t{e.offset:+d}]) * {tied}))"
                return f"({m}[t{e.offset:+d}] * {text_of(e)})"
            return text_of(e)
        return self._map(e, lambda a: self.later_reads(a, eq))

    def losses(self, e, eq):
        """Each loss of a step: exactly 0, with zero gradient, at padded steps."""
        if isinstance(e, Call) and e.fn in LOSSES:
            a, y = e.args
            m = self.mask(self.rows_of(e, eq), eq.line, eq.name)
            a_text, y_text = self.later_reads(a, eq), self.later_reads(y, eq)
            if e.fn == "mse":
                return f"mse(({m}[t] * {a_text}), ({m}[t] * {y_text}))"
            if e.fn == "cross_entropy":
                truth = self.truth(y, eq)
                return (f"cross_entropy((({m}[t] * {a_text}) + ((1 - {m}[t]) * ({SATURATED!r} * "
                        f"one_hot({truth})))), {y_text})")
            return (f"bce_with_logits((({m}[t] * {a_text}) + ((1 - {m}[t]) * {SATURATED!r})), "
                    f"(({m}[t] * {y_text}) + (1 - {m}[t])))")
        if isinstance(e, Ref | Name | Num):
            return self.later_reads(e, eq)
        return self._map(e, lambda a: self.losses(a, eq))

    def truth(self, y, eq) -> str:
        """``y[t+k]`` as a loss's target reads it, where free running does not replace it: a copy of the
        data when ``y`` has a ``feedback`` line (free running replaces its uses outside a target slot)."""
        if y.name not in self.rec.spec.feedbacks:
            return self.later_reads(y, eq)
        copy = next((c for c, source in self.out.copies.items() if source == y.name), None)
        if copy is None:
            copy = self.fresh(f"{y.name}_truth")
            self.out.copies[copy] = y.name
        return text_of(Ref(y.line, y.col, y.text, copy, y.offset, y.anchor))

    @staticmethod
    def _map(e, f):
        if isinstance(e, Unary):
            return f"({e.op}{f(e.operand)})"
        if isinstance(e, Transpose):
            return f"({f(e.operand)}).T"
        if isinstance(e, Bin):
            return f"({f(e.left)} {e.op} {f(e.right)})"
        if isinstance(e, Call):
            return f"{e.fn}({', '.join(f(a) for a in e.args)})"
        return text_of(e)

    # ------------------------------------------------------------------ the last step
    def at_tau(self, e, eq, held):
        if isinstance(e, Ref):
            var = self.rec.variables[e.name]
            if var.kind in ("input", "target"):
                got = next((n for n, v in self.out.at_tau.items() if v == (e.name, e.offset)), None)
                if got is None:
                    got = self.fresh(f"{e.name}_at_tau{e.offset:+d}".replace("+", "p").replace("-", "m"))
                    self.out.at_tau[got] = (e.name, e.offset)
                return f"{got}[tau]"
            if e.name in self.rec.equations and self.rec.equations[e.name].anchor == "t" and e.offset <= 0:
                if e.offset == 0 and e.name in held:
                    return text_of(e)
                if var.rows is None:
                    raise _refuse(self.rec, f"`{e.text}` reads {e.name}, which is not a column of numbers, at "
                                  f"the last step", eq.line, e.name)
                lag = self.lags.get((e.name, e.offset))
                if lag is None:
                    lag = self.lags[(e.name, e.offset)] = self.fresh(f"{e.name}_last{-e.offset or ''}")
                return f"{lag}[tau]"
            return text_of(e)
        return self._map(e, lambda a: self.at_tau(a, eq, held))

    def free_running_reads(self) -> str | None:
        """Why free running cannot run padded: a fed value read at a later step (``y[t+1]``, which after a
        sequence's last step is its initial value alone) or at the last step (tau is each sequence's own)."""
        fed = set(self.rec.spec.feedbacks)
        for eq in self.rec.equations.values():
            for ref in references(eq.expr, skip_targets=True):
                if ref.name in fed and (ref.anchor == "tau" or ref.offset > 0):
                    return (f"`{ref.text}` in the equation of {eq.name} reads the fed value of {ref.name} at a "
                            f"{'last' if ref.anchor == 'tau' else 'later'} step")
        return None

    # ------------------------------------------------------------------ the whole spec
    def run(self):
        rec = self.rec
        spec = rec.spec
        forward_read = {r.name for eq in rec.equations.values() for r in references(eq.expr)
                        if r.anchor == "t" and r.offset < 0 and r.name in rec.equations}
        read_at_tau = {r.name for eq in rec.equations.values() if eq.anchor == "tau"
                       for r in references(eq.expr) if r.offset == 0 and r.name in rec.equations}
        held = {v for v in forward_read | read_at_tau
                if rec.equations[v].anchor == "t" and self.directions.get(v, 0) >= 0
                and rec.variables[v].rows is not None}
        self.out.held = held
        lines = []
        for name, eq in rec.equations.items():
            if eq.anchor == "t":
                body = self.losses(eq.expr, eq)
                if name in held:
                    m = self.mask(rec.variables[name].rows, eq.line, name)
                    body = f"({m}[t] * {body}) + ((1 - {m}[t]) * {name}[t-1])"
                elif name in forward_read:
                    raise _refuse(rec, f"{name} is read at an earlier step but is not a column of numbers, so "
                                  f"it cannot hold its value after a sequence's end", eq.line, name)
                lines.append(f"{name}[t] = {body}")
            else:
                lines.append(f"{name}[tau] = {self.at_tau(eq.expr, eq, held)}")
        for (name, k), lag in self.lags.items():
            m = self.mask(rec.variables[name].rows, rec.equations[name].line, name)
            source = f"{name}[t{k:+d}]" if k else f"{name}[t]"
            lines.append(f"{lag}[t] = ({m}[t] * {source}) + ((1 - {m}[t]) * {lag}[t-1])")
        declarations = [f"input {m}: {rows}" for m, rows in self.out.masks.items()]
        for copy, source in self.out.copies.items():
            declarations.append(f"target {copy}: class {rec.variables[source].classes}")
            if rec.variables[source].init is not None:
                declarations.append(f"init {copy} = {rec.variables[source].init}")
        self.out.not_free = self.free_running_reads()
        for new, (data, _) in self.out.at_tau.items():
            var = rec.variables[data]
            declarations.append(f"target {new}: class {var.classes}" if var.is_label else f"input {new}: {var.rows}")
        declarations += [f"state {lag}: {rec.variables[name].rows}" for (name, _), lag in self.lags.items()]
        shapes = rec.all_param_shapes()
        declarations += [f"param {p}: {shapes[q][0]} x 1" for p, q in self.out.tied.items()]
        if rec.losses and not spec.losses:
            declarations.append("loss " + ", ".join(rec.losses))
        skip = {eq.line for eq in spec.equations}
        kept = [line for number, line in enumerate(re.split(r"\r\n|\r|\n", spec.text), start=1)
                if number not in skip]
        text = "\n".join(kept + declarations + lines) + "\n"
        from .recurrence import Recurrence

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the user saw the spec's warnings already
                new = Recurrence(text, sizes=rec.sizes, name=rec.name)
        except SpecError as exc:
            raise _refuse(rec, f"its rewrite with masks fails ({exc.message})") from None
        if new.all_param_shapes() != {**rec.all_param_shapes(), **{p: shapes[q] for p, q in self.out.tied.items()}}:
            raise _refuse(rec, "its rewrite with masks changes the parameters")
        self.out.rec = new
        return self.out


def padded(rec) -> Padded:
    """``rec`` rewritten for variable-length batches (cached on ``rec``); see the module's text."""
    got = rec.__dict__.get("_padded")
    if got is None:
        got = rec.__dict__["_padded"] = _Rewrite(rec).run()
    return got
