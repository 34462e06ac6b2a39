"""Random valid recurrences in the notation, for comparing graphrnn with the reference interpreter.

A hypothesis strategy, :func:`recurrences`, draws a spec's text.  It writes:

* one to three per-step variables (``h``, ``g``, ``s``) of 1-3 rows, each running forwards
  (reading ``[t-k]``) or backwards in time (reading ``[t+k]``), with delays of 1 to 3 steps,
  same-step reads of earlier variables, and backward variables reading forward ones at any
  offset;
* an input ``x`` read at ``t-2 .. t+2`` (``init x = zero`` before step 1);
* initial values ``= zero``, ``= learned`` or left to the default;
* expressions over the whole notation: ``+ - * / ** @ .T``, unary minus, numbers, gates
  (``sigmoid(...) * tanh(...)``), ``tanh sigmoid relu exp log softmax log_softmax``;
* sometimes a context ``c`` read bare (``R @ c``, fig. 10.9), a class-label target ``y`` fed
  back as ``one_hot(y[t-k])`` (with ``feedback y[t] = argmax(...)`` for free-running mode,
  fig. 10.6), a pair of variables ``a``/``b`` whose cycle mixes a forward and a backward
  reference (``a[t]`` reads ``b[t+1]``, ``b[t]`` reads ``a[t-2]``: no single direction), and
  an equation at the last step only (``q[tau] = ...`` with its own loss ``E[tau]``) reading one
  or two variables at ``tau-3 .. tau`` (and a backward one at ``tau+1``): in a run of at most k
  steps a read of ``[tau-k]`` reaches the variable's initial value, learned or zero;
* with learned initial states, variables that read no data (the same for every sequence) or
  every one reading ``x[t]`` too;
* a loss ``L[t]`` of one or two of ``mse``, ``cross_entropy``, ``bce_with_logits``.

:func:`random_params` draws parameters for a drawn spec (shared by the tests that use it).
``recurrences(Options(relu=False, probes=True))`` leaves relu out and ends every computed variable's
equation in ``+ probe_v[t]`` (an input a test sets to zero): what a finite-difference test needs to
check dL/dv[t] (``Drawn.probes`` names them).

Every spec drawn is valid: no algebraic loop (the rules in :meth:`_Draw.reference` keep every
cycle's delays positive or negative, never summing to zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

NAMES = ["h", "g", "s"]


@dataclass
class Drawn:
    text: str
    feedback: bool  # the spec has a feedback line: it runs in free mode too
    constructs: set  # which of the optional constructs it holds (for the coverage test)
    probes: dict = None  # with probes=True: computed variable -> the input added to its equation


class Options:
    """What :func:`recurrences` may leave out or add: ``relu`` (its kink is no place for finite
    differences) and ``probes``: every computed variable's equation ends in ``+ probe_v[t]``, an input
    whose data a test sets to zero, so that dL/dv[t] is dL/dprobe_v[t] (checkable by finite differences)."""

    def __init__(self, relu: bool = True, probes: bool = False):
        self.relu, self.probes = relu, probes


class _Draw:
    def __init__(self, draw, options: Options | None = None):
        self.draw = draw
        self.options = options or Options()
        self.probes: dict[str, str] = {}
        self.constructs: set[str] = set()
        self.n = draw(st.integers(1, 3))
        self.sizes = {NAMES[i]: draw(st.integers(1, 3)) for i in range(self.n)}
        # the first variable runs forwards; a backward variable may read forward ones, never the reverse
        self.backward = {NAMES[i]: i > 0 and draw(st.booleans()) for i in range(self.n)}
        self.input_size = draw(st.integers(1, 3))
        self.context = draw(st.integers(1, 3)) if draw(st.booleans()) else None
        self.mixed = draw(st.integers(0, 3)) == 0
        if self.mixed:
            self.sizes.update(a=draw(st.integers(1, 2)), b=draw(st.integers(1, 2)))
        self.tau = draw(st.booleans())
        self.params: dict[tuple, list[str]] = {}
        self.count = 0
        self.label = None  # (variable the cross-entropy reads, feedback or not)

    # ---------------------------------------------------------------- pieces

    def param(self, shape) -> str:
        existing = self.params.get(shape, [])
        if existing and self.draw(st.booleans()):
            return self.draw(st.sampled_from(existing))  # a parameter shared between uses
        name = f"P{self.count}"
        self.count += 1
        self.params.setdefault(shape, []).append(name)
        return name

    def reference(self, v: str) -> tuple[str, int]:
        """Something variable ``v`` may read without an algebraic loop: (text, rows)."""
        draw = self.draw
        options = ["x"] + (["c"] if self.context else []) + (["y"] if self.label else [])
        order = NAMES[:self.n]
        if v in order:
            i = order.index(v)
            for j, u in enumerate(order):
                if self.backward[u] == self.backward[v]:
                    options.append(u)  # same direction: same step if earlier, else delayed
                elif self.backward[v] and not self.backward[u]:
                    options.append(u)  # a backward variable reads forward ones at any offset
        choice = draw(st.sampled_from(options))
        if choice == "x":
            k = draw(st.integers(-2, 2))
            return (f"x[t{k:+d}]" if k else "x[t]"), self.input_size
        if choice == "c":
            self.constructs.add("context")
            return "c", self.context
        if choice == "y":
            self.constructs.add("one_hot")
            # forward readers see y before this step (so the fed-back argmax comes from an earlier step)
            k = draw(st.integers(1, 2)) if not self.backward.get(v, False) else draw(st.integers(0, 2))
            return f"one_hot(y[t-{k}])" if k else "one_hot(y[t])", self.sizes[self.label[0]]
        u = choice
        sign = 1 if self.backward[v] else -1
        if self.backward[v] and not self.backward[u]:
            k = draw(st.integers(-3, 3))
        elif order.index(u) < order.index(v):
            k = sign * draw(st.integers(0, 3))
        else:
            k = sign * draw(st.integers(1, 3))
        if abs(k) >= 2:
            self.constructs.add("delay>1")
        if k > 0:
            self.constructs.add("backward")
        return (f"{u}[t{k:+d}]" if k else f"{u}[t]"), self.sizes[u]

    def leaf(self, v: str, rows: int) -> str:
        ref, cols = self.reference(v)
        how = self.draw(st.sampled_from(["matmul", "matmul", "transpose", "direct"]))
        if how == "direct" and cols == rows and not ref.startswith("one_hot"):
            return ref
        if how == "transpose":
            self.constructs.add(".T")
            return f"({self.param((cols, rows))}.T @ {ref})"
        return f"({self.param((rows, cols))} @ {ref})"

    def expr(self, v: str, rows: int, depth: int) -> str:
        draw = self.draw
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return self.leaf(v, rows)
        op = draw(st.sampled_from(["+", "-", "*", "gate", "bias", "tanh", "sigmoid", "exp", "logsig", "softmax",
                                   "log_softmax", "scale", "div", "pow", "neg"] + (["relu"] if self.options.relu else [])))
        a = self.expr(v, rows, depth - 1)
        if op in ("+", "-", "*"):
            return f"({a} {op} {self.expr(v, rows, depth - 1)})"
        if op == "gate":
            self.constructs.add("gate")
            return f"(sigmoid({a}) * tanh({self.expr(v, rows, depth - 1)}))"
        if op == "bias":
            return f"({self.param((rows, 1))} + {a})"
        if op == "exp":
            return f"exp(tanh({a}))"  # exp of bounded values
        if op == "logsig":
            return f"log(sigmoid({a}))"
        if op == "scale":
            return f"({draw(st.sampled_from(['0.5', '2', '1.5', '-1.5']))} * {a})"
        if op == "div":
            return f"({a} / {draw(st.sampled_from(['2.0', '4']))})"
        if op == "pow":
            return f"(tanh({a}) ** {draw(st.sampled_from(['2', '3']))})"
        if op == "neg":
            return f"(-{a})"
        return f"{op}({a})"

    def last_step_reads(self, order, learned) -> list[tuple[str, str]]:
        """One or two reads for ``q[tau]``: (variable, ``tau``, ``tau-k`` or, of a backward one, ``tau+1``);
        variables with a learned initial value (a short run reaches it) and backward ones are read more often."""
        out = []
        pools = [order] + [p for p in ([v for v in order if v in learned], [v for v in order if self.backward[v]])
                           if p]
        for _ in range(self.draw(st.integers(1, 2))):
            v = self.draw(st.sampled_from(self.draw(st.sampled_from(pools))))
            k = self.draw(st.sampled_from([-1, -1, 0, 1, 2, 3] if self.backward[v] else [0, 1, 2, 3]))
            if k > 0:
                self.constructs.add("tau-k")
            elif k < 0:
                self.constructs.add("tau+k")
            out.append((v, f"tau-{k}" if k > 0 else "tau+1" if k < 0 else "tau"))
        return out

    def probe(self, v: str, step: str = "t") -> str:
        """`` + probe_v[t]`` with ``Options(probes=True)`` (declared in :meth:`spec`), else nothing."""
        if not self.options.probes:
            return ""
        self.probes[v] = f"probe_{v}"
        return f" + probe_{v}[{step}]"

    # ---------------------------------------------------------------- the spec

    def spec(self) -> Drawn:
        draw = self.draw
        order = NAMES[:self.n]
        lines = [f"input x: {self.input_size}", "init x = zero"]
        learned = set()
        for v in order + (["a", "b"] if self.mixed else []):
            init = draw(st.sampled_from(["zero", "learned", "learned", None]))
            if init == "learned":
                self.constructs.add("learned")
                learned.add(v)
            lines.append(f"state {v}: {self.sizes[v]}" + (f" = {init}" if init else ""))
        losses = draw(st.lists(st.sampled_from(["mse", "ce", "bce"]), min_size=1, max_size=2, unique=True))
        on = {kind: draw(st.sampled_from(order + (["a"] if self.mixed else []))) for kind in losses}
        if "ce" in on:
            feedback = not self.backward.get(on["ce"], False) and on["ce"] in order and draw(st.integers(0, 2)) > 0
            self.label = (on["ce"], feedback)
            lines += [f"target y: class {self.sizes[on['ce']]}", "init y = zero"]
            if feedback:
                self.constructs.add("feedback")
                lines.append(f"feedback y[t] = argmax({on['ce']}[t])")
        for i, v in enumerate(order):
            body = self.expr(v, self.sizes[v], draw(st.integers(1, 3)))
            wrap = draw(st.sampled_from(["tanh", "sigmoid", ""]))
            if learned and draw(st.booleans()):
                # otherwise a variable may be computed from learned initial values and parameters only (at
                # some step or all): the same for every sequence (test_interpreter.py's
                # test_a_variable_that_depends_on_no_data_has_a_column_per_sequence), free running too
                # (test_free_running_a_state_that_reads_no_data_on_the_fast_path)
                body += f" + {self.param((self.sizes[v], self.input_size))} @ x[t]"
            elif learned:
                self.constructs.add("learned, no x[t] added")
            lines.append(f"{v}[t] = {wrap}({body}) + {self.param((self.sizes[v], 1))}{self.probe(v)}")
        if "context" in self.constructs:  # declared only when read: an unused context is an error
            lines.insert(2, f"context c: {self.context}")
        if self.mixed:
            self.constructs.add("mixed")
            ra, rb = self.sizes["a"], self.sizes["b"]
            h = order[0]  # forward: a may read it at the same step
            lines += [
                f"a[t] = tanh({self.param((ra, ra))} @ a[t-1] + {self.param((ra, rb))} @ b[t+1] "
                f"+ {self.param((ra, self.sizes[h]))} @ {h}[t]){self.probe('a')}",
                f"b[t] = sigmoid({self.param((rb, ra))} @ a[t-2] + {self.param((rb, self.input_size))} @ x[t])"
                f"{self.probe('b')}",
            ]
        terms = []
        for kind, v in on.items():
            if kind == "mse":
                lines.append(f"target z: {self.sizes[v]}")
                terms.append(f"mse({v}[t], z[t])")
            elif kind == "ce":
                terms.append(f"cross_entropy({v}[t], y[t])")
            else:
                lines.append(f"target stop: {self.sizes[v]}")
                terms.append(f"bce_with_logits({v}[t], stop[t])")
        names = ["L"]
        lines.append("L[t] = " + " + ".join(terms))
        if self.tau:
            self.constructs.add("tau")
            rows = draw(st.integers(1, 3))
            reads = " + ".join(f"{self.param((rows, self.sizes[v]))} @ {v}[{step}]"
                               for v, step in self.last_step_reads(order, learned))
            lines += [f"target zq: {rows}",
                      f"q[tau] = tanh({reads} + {self.param((rows, self.input_size))} @ x[tau]) "
                      f"+ {self.param((rows, 1))}{self.probe('q', 'tau')}",
                      "E[tau] = mse(q[tau], zq[tau])"]
            self.sizes["q"] = rows
            names.append("E")
        lines.append("loss " + ", ".join(names))
        lines[1:1] = [f"input {p}: {self.sizes[v]}" for v, p in self.probes.items()]
        return Drawn("\n".join(lines) + "\n", bool(self.label and self.label[1]), set(self.constructs),
                     dict(self.probes))


@st.composite
def recurrences(draw, options: Options | None = None) -> Drawn:
    """A random valid spec (see the module docstring); ``options``: see :class:`Options`.

    ``recurrences(Options(relu=False, probes=True))`` is what a finite-difference test needs."""
    return _Draw(draw, options).spec()


def random_params(rec, seed: int, scale: float = 1.3) -> dict[str, np.ndarray]:
    """Parameters for a drawn spec: ``init_params`` a bit larger (the nonlinearities matter), learned
    initial states of either sign, away from zero."""
    params = {k: scale * v for k, v in rec.init_params(seed=seed).items()}
    rng = np.random.default_rng(seed + 1)
    for pname in rec.learned_inits().values():
        params[pname] = rng.uniform(0.2, 0.8, params[pname].shape) * rng.choice([-1.0, 1.0], params[pname].shape)
    return params
