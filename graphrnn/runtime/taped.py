"""The taped strategy: a run as engine nodes, step by step, with the book's dummy copies.

:func:`run_taped` evaluates the blocks of the unrolled graph on the engine.  Each use
of a parameter at step t goes through its own identity node ``W^(t)`` — the book's
dummy copies (§10.2.2) — so the contribution of every step to ∇W is a real gradient in
the graph, and the contributions add up to ∇W.  It serves what needs graph nodes: the
dummy copies, overrides, ``retain_graph``, anomaly mode and gradient-path drawings.

Without dummy copies (``copies=False`` with overrides, ``retain_graph`` or anomaly
mode, or what the compiled program cannot run) the same evaluation is lean: the
data-only terms are split off (``h:in``, :func:`.equations.fast_equations`) and the
temporaries no VJP reads are released at once.  It still runs step by step: the one
fast path is the compiled program (:mod:`.program`).

:class:`StepContext` and :func:`compile_expression` are public: the step-by-step check
(:mod:`graphrnn.verify.perturb`) evaluates single nodes with them.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> run = rec.run(rec.random_inputs(3))
>>> sorted(run.copy_grads["W"])
[1, 2, 3]
"""

from __future__ import annotations

import bisect
import contextlib
import gc

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import DataError, SpecError
from ..recurrence.recurrence import Recurrence
from ..recurrence.spec import Bin, Call, Name, Num, Ref, Transpose, Unary
from ..recurrence.unroll import key
from .data import batch_sizes
from .result import NO_LOSS, NodeMap, Run
from .stepcode import placeholder_of


def run_taped(plan) -> Run:
    """Evaluate ``plan`` (a :class:`~.runner.RunPlan`) on the engine and back-propagate its loss."""
    leaves = plan.leaves()
    ctx = StepContext(plan.rec, plan.T, plan.data, leaves, plan.dtype, mode=plan.mode, p=plan.p,
                      rng=np.random.default_rng(plan.seed), copies=plan.copies and plan.backward)
    ctx.start_from(plan.initial)
    ctx.overrides = plan.overrides
    ctx.wants_grads = plan.backward
    ctx.lean = plan.fast and plan.backward
    ctx.eqs = plan.eqs
    values = ctx.values
    step_losses: dict[int, float] = {}
    with (E.enable_grad() if plan.backward else E.no_grad()), no_cyclic_gc():
        total = evaluate_steps(ctx, plan, (1, plan.T), step_losses)
        for value in values.values():
            if value.requires_grad:
                value.retain_grad()
        loss_value = float(total.data) if total is not None else float("nan")
        if not np.isfinite(loss_value) and total is not None:
            bad = next((key(n, t) for (n, t), v in values.items() if not np.all(np.isfinite(v.data))), "the loss")
            raise DataError(f"the forward pass produced a non-finite value first at {bad}; the parameters or "
                            f"data are too large (try smaller weights, or gr.detect_anomaly() to find the op)")
        if plan.backward:
            if total is None:
                raise SpecError(NO_LOSS.format(plan.rec.name))
            total.backward(retain_graph=plan.retain_graph)
    return _collect(ctx, leaves, (total, loss_value), step_losses)


class StepContext:
    """The state of one taped run: data, parameters, dummy copies and computed values.

    ``values`` maps ``(variable, step)`` to the engine tensor computed there; ``ref``
    answers what an equation reads (a computed value, data, or an initial value);
    ``param`` gives a parameter's use at a step (its dummy copy when ``copies``).
    Evaluating one node is ``compile_expression(eq.expr, rec, name)(ctx, t)``.

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_3", sizes={"H": 3})
    >>> params = {n: Tensor(a) for n, a in rec.init_params().items()}
    >>> ctx = StepContext(rec, 2, rec.random_inputs(2), params, np.dtype(np.float64))
    >>> h1 = compile_expression(rec.equations["h"].expr, rec, "h")(ctx, 1)
    >>> h1.shape
    (3, 1)
    """

    def __init__(self, rec, T, data, params, dtype, *, mode="teacher", p=0.5, rng=None, copies=False):
        self.rec, self.T, self.data, self.dtype = rec, T, data, dtype
        self.mode, self.p, self.copies_wanted = mode, p, copies
        self.rng = np.random.default_rng(0) if rng is None else rng
        self.values: dict[tuple[str, int], Tensor] = {}
        self.params = params
        self.copies: dict[tuple[str, int], Tensor] = {}
        self.data_tensors: dict[tuple[str, int], Tensor] = {}
        self.initials: dict[tuple[str, int], Tensor] = {}
        self.batch = next(iter(batch_sizes(rec, data).values()), 1)
        self.learned = rec.learned_inits()
        #: the compiled program traces the equations of many steps at once with this set (program._Tracer):
        #: a loss is then one number per column, not per step
        self.stacked_mode = False
        self.lean = False  # release what no VJP reads (the fast path; see _release)
        self.eqs: dict = {}
        self.overrides: dict = {}
        self.wants_grads = False  # set by run(backward=True)

    def param(self, name: str, t: int) -> Tensor:
        if not self.copies_wanted and not self.overrides:
            return self.params[name]
        copy = self.copies.get((name, t))
        if copy is None:
            label = f"{name}^({t})"
            if label in self.overrides:
                copy = _override(self.params[name], self.overrides[label], label)
                self.copies[(name, t)] = copy
                return copy
            if not self.copies_wanted:
                return self.params[name]
            copy = E.identity(self.params[name], name=label)
            copy.retain_grad()
            self.copies[(name, t)] = copy
        return copy

    def context(self, name: str) -> Tensor:
        t = self.data_tensors.get((name, 0))
        if t is None:
            arr = self.data[name]
            # a context gets a gradient like a parameter's: an encoder feeding it needs one (§10.2.4, fig. 10.12)
            wants = self.wants_grads and E.is_grad_enabled() and arr.dtype.kind == "f"
            t = self.data_tensors[(name, 0)] = Tensor(arr, name=name, requires_grad=wants)
        return t

    def ref(self, name: str, s: int, needed_by: str) -> Tensor:
        value = self.values.get((name, s))
        if value is not None:
            return value
        var = self.rec.variables[name]
        if var.kind in ("input", "target"):
            return self._data(name, s, needed_by)
        return self._initial(name, s)

    def _data(self, name, s, needed_by):
        got = self.data_tensors.get((name, s))
        if got is not None:
            return got
        var = self.rec.variables[name]
        series = self.data[name]
        if not 1 <= s <= len(series):
            if var.init is not None and not 1 <= s <= self.T:  # init stands for steps outside 1..T only
                return self._initial(name, s)
            if isinstance(needed_by, tuple):
                needed_by = key(*needed_by)
            raise DataError(
                f"{needed_by} needs {key(name, s)}, but the data for {name!r} covers steps 1..{len(series)}; "
                + (f"give {name} for steps up to {s}" if s > len(series) else
                   f"declare `init {name} = zero` to use a zero (class 0) value before step 1"))
        got = self.data_tensors[(name, s)] = Tensor(series[s - 1], name=key(name, s))
        return got

    def start_from(self, initial: dict) -> None:
        """Take ``initial`` (``{(state, step <= 0): array}``, a run's ``initial_state``) as the values
        before step 1: constants, in place of the declared initial values."""
        for (name, s), value in initial.items():
            self.initials[(name, s)] = Tensor(value, name=key(name, s))

    def _initial(self, name, s):
        got = self.initials.get((name, s))
        if got is None:
            var = self.rec.variables[name]
            if var.init == "learned":
                got = self.params[self.learned[name]]
            elif var.is_label:
                got = Tensor(np.zeros(self.batch, dtype=np.int64), name=key(name, s))
            else:
                got = Tensor(np.zeros((var.rows, self.batch), dtype=self.dtype), name=key(name, s))
            self.initials[(name, s)] = got
        return got


def _is_temporary(e) -> bool:
    """Whether the value of sub-expression ``e`` is made inside its equation and read only by its
    parent (an expression is a tree): so, once read, it may be released (see :func:`_release`)."""
    if isinstance(e, Unary) and e.op == "+":
        return _is_temporary(e.operand)
    return isinstance(e, Bin | Call | Transpose | Unary)


#: arrays smaller than this are not worth releasing (the allocator recycles small blocks anyway)
RELEASE_BYTES = 1 << 14


def _release(out, values, temporary) -> None:
    """Drop the arrays of temporary operands that the backward pass will not read.

    The fast path keeps, like PyTorch's saved tensors, only what each op's VJP
    declares it reads (``Op.reads_args``, ``Op.reads_out``): ``W @ h`` in
    ``tanh(W @ h + b)`` is read by no VJP, so its array goes back to the allocator
    at once instead of living until the backward pass.  The tensor keeps its shape
    and dtype (a zero-stride placeholder), which is all the backward pass needs."""
    op = out.op
    if op is None:
        return
    parents = out.parents
    for value, temp in zip(values, temporary):
        if not temp or not isinstance(value, Tensor) or value.op is None or value.op.reads_out:
            continue
        data = value.data
        if data.nbytes < RELEASE_BYTES:
            continue
        slots = [i for i, p in enumerate(parents) if p is value]
        if slots and not any(op.reads_arg(i) for i in slots):
            value.data = placeholder_of(data.shape, data.dtype)



def compile_expression(e, rec: Recurrence, eq_name: str):
    """Turn an expression of equation ``eq_name`` into a function ``(ctx, t) -> Tensor``
    (``ctx`` a :class:`StepContext`, or a context that answers the same questions)."""
    if isinstance(e, Num):
        value = e.value
        return lambda ctx, t: value
    if isinstance(e, Name):
        name = e.name
        if name in rec.spec.contexts:
            return lambda ctx, t: ctx.context(name)
        return lambda ctx, t: ctx.param(name, t)
    if isinstance(e, Ref):
        name, offset = e.name, e.offset
        if e.anchor == "tau":
            return lambda ctx, t: ctx.ref(name, ctx.T + offset, (eq_name, t))
        return lambda ctx, t: ctx.ref(name, t + offset, (eq_name, t))  # (who needs it, for an error message)
    if isinstance(e, Unary) and e.op == "+":
        return compile_expression(e.operand, rec, eq_name)
    if isinstance(e, Unary):
        return _apply_to(E.neg, [e.operand], rec, eq_name)
    if isinstance(e, Transpose):
        return _apply_to(E.transpose, [e.operand], rec, eq_name)
    if isinstance(e, Bin):
        if e.op == "**":
            p = e.right.value
            return _apply_to(lambda x: E.power(x, p), [e.left], rec, eq_name)
        return _apply_to({"+": E.add, "-": E.sub, "*": E.mul, "/": E.div, "@": E.matmul}[e.op],
                         [e.left, e.right], rec, eq_name)
    if isinstance(e, Call):
        if e.fn == "one_hot":
            return _apply_to(_one_hot(e, rec, eq_name), list(e.args), rec, eq_name, with_ctx=True)
        return _apply_to(_FUNCTIONS[e.fn], list(e.args), rec, eq_name, with_ctx=True)
    raise AssertionError(f"cannot compile {e!r}")


def _apply_to(fn, operands, rec, eq_name, with_ctx=False):
    """A closure computing ``fn`` of the operands' values (releasing temporaries on the fast path)."""
    kids = [compile_expression(o, rec, eq_name) for o in operands]
    temporary = [_is_temporary(o) for o in operands]
    if len(kids) == 1:
        (k,) = kids

        def one(ctx, t):
            x = k(ctx, t)
            out = fn(ctx, x) if with_ctx else fn(x)
            if temporary[0] and ctx.lean:
                _release(out, (x,), temporary)
            return out

        return one
    if len(kids) == 2:
        k0, k1 = kids

        any_temporary = any(temporary)

        def two(ctx, t):
            x, y = k0(ctx, t), k1(ctx, t)
            out = fn(ctx, x, y) if with_ctx else fn(x, y)
            if any_temporary and ctx.lean:
                _release(out, (x, y), temporary)
            return out

        return two

    def many(ctx, t):
        values = [k(ctx, t) for k in kids]
        out = fn(ctx, *values) if with_ctx else fn(*values)
        if ctx.lean:
            _release(out, values, temporary)
        return out

    return many


def _labels(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# Losses: one number per step, summed over the sequences of the batch (eq. 10.13); when
# all steps are computed at once (the compiled program's stages), one number per column instead.


def _mse(ctx, x, y):
    if ctx.stacked_mode:
        return E.mean(E.mse(x, y, reduction="none"), axis=0)
    rows = x.shape[0] if x.ndim == 2 else 1
    return E.mse(x, y, reduction="sum") / rows  # mean over a column's entries, summed over the batch


def _cross_entropy(ctx, o, y):
    return E.cross_entropy(o, _labels(y), axis=0, reduction="none" if ctx.stacked_mode else "sum")


def _bce(ctx, s, z):
    if ctx.stacked_mode:
        return E.sum(E.bce_with_logits(s, z, reduction="none"), axis=0)
    return E.bce_with_logits(s, z, reduction="sum")


def _sample(ctx, scores):
    scores = _as_array(scores)
    p = np.exp(scores - scores.max(axis=0, keepdims=True))
    p /= p.sum(axis=0, keepdims=True)
    cdf = np.cumsum(p, axis=0)
    u = ctx.rng.random(p.shape[1])
    return Tensor(np.minimum((cdf < u).sum(axis=0), p.shape[0] - 1))


def _feed(ctx, value, truth=None):
    """Free-running mode's fed value (no gradient); scheduled sampling mixes in the truth."""
    value = value.detach() if isinstance(value, Tensor) else Tensor(value)
    if truth is None:
        return value
    pick_model = ctx.rng.random(ctx.batch) < ctx.p
    mixed = np.where(pick_model, value.data, truth.data) if value.ndim == 1 else np.where(
        pick_model[None, :], value.data, truth.data)
    return Tensor(mixed)


def _one_hot(e, rec, eq_name):
    arg = e.args[0]
    if isinstance(arg, Ref):
        classes = rec.variables[arg.name].classes
        return lambda ctx, labels: E.one_hot(_labels(labels), classes, dtype=ctx.dtype)
    # one_hot(argmax(o)): as many classes as the scores had rows (see _labels_of)
    return lambda ctx, labels: E.one_hot(_labels(labels), labels.attrs["classes"], dtype=ctx.dtype)


def _labels_of(labels: Tensor, scores) -> Tensor:
    """Class labels chosen from ``scores``, remembering how many classes there were."""
    labels.attrs = {"classes": scores.shape[0]}
    return labels


_FUNCTIONS = {
    "tanh": lambda ctx, x: E.tanh(x),
    "sigmoid": lambda ctx, x: E.sigmoid(x),
    "relu": lambda ctx, x: E.relu(x),
    "exp": lambda ctx, x: E.exp(x),
    "log": lambda ctx, x: E.log(x),
    "softmax": lambda ctx, x: E.softmax(x, axis=0),
    "log_softmax": lambda ctx, x: E.log_softmax(x, axis=0),
    "cross_entropy": _cross_entropy,
    "bce_with_logits": _bce,
    "mse": _mse,
    "argmax": lambda ctx, x: _labels_of(E.argmax(x, axis=0), x),
    "sample": lambda ctx, x: _labels_of(_sample(ctx, x), x),
    "feed": _feed,
}


def _as_array(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)

def _override(value: Tensor, array, where: str) -> Tensor:
    array = np.asarray(array)
    if array.shape != value.shape:
        raise DataError(f"the override for {where} has shape {array.shape}, but {where} has shape {value.shape}")
    return Tensor(array.astype(value.dtype, copy=False), name=where)



def evaluate_steps(ctx, plan, span: tuple[int, int], step_losses: dict, loss_from: int | None = None,
                   blocks=None):
    """Evaluate steps ``a..b`` (``span``) of every block of ``plan`` (or of ``blocks``) into ``ctx``
    and return the loss of the steps from ``loss_from`` (default ``a``) to ``b`` as a tensor
    (``None`` when there is none).

    Values the steps need from before ``a`` must already be in ``ctx.values``."""
    a, b = span
    compiled = plan.compiled
    blocks = plan.blocks if blocks is None else blocks
    losses = set(ctx.rec.losses)
    loss_from = a if loss_from is None else loss_from
    # every computed value gets a gradient, even one computed from data alone (no parameter upstream)
    grad_everywhere = ctx.wants_grads and E.is_grad_enabled()
    fed = {n for n, v in ctx.rec.variables.items() if v.kind == "fed"}
    columns = {n for n, v in ctx.rec.variables.items() if v.rows and not v.is_label and v.shape != ()}
    overrides = ctx.overrides
    values = ctx.values
    total = None
    for block in blocks:
        steps = block.steps
        if a != 1 or b != ctx.T:  # a segment of a causal recurrence: its blocks run forwards in time
            steps = steps[bisect.bisect_left(steps, a, key=_step_of):bisect.bisect_right(steps, b, key=_step_of)]
        for name, t in steps:
            value = compiled[name](ctx, t)
            if not isinstance(value, Tensor):
                value = Tensor(np.full((1, 1), value, dtype=ctx.dtype))
            elif value.ndim == 2 and value.shape[1] == 1 < ctx.batch and name in columns:
                # computed from no data (only a learned initial state and parameters): still one column
                # per sequence, as on the compiled path and in docs/notation.md
                value = E.add(value, np.zeros((value.shape[0], ctx.batch), dtype=value.dtype))
            if overrides and key(name, t) in overrides:
                value = _override(value, overrides[key(name, t)], key(name, t))
            if grad_everywhere and not value.requires_grad and value.dtype.kind == "f" and name not in fed:
                value = Tensor(value.data, requires_grad=True, name=key(name, t))  # computed from data alone
            values[(name, t)] = value
            if name in losses and t >= loss_from:
                total = value if total is None else total + value
                step_losses[t] = step_losses.get(t, 0.0) + float(value.data)
    return total


def _step_of(item) -> int:
    return item[1]


@contextlib.contextmanager
def no_cyclic_gc():
    """Pause Python's cycle collector: a run allocates many tensors but makes no reference
    cycles, and collections that rescan them all would make a long run quadratic."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _collect(ctx, leaves, loss, step_losses) -> Run:
    """Gather values and gradients, keyed like the unrolled graph (``loss``: the loss tensor and its value)."""
    rec, T, mode, backward = ctx.rec, ctx.T, ctx.mode, ctx.wants_grads
    total, loss_value = loss
    param_arrays = {n: leaf.data for n, leaf in leaves.items()}
    B = ctx.batch
    dtype = ctx.dtype
    by_var: dict[str, dict[int, Tensor]] = {}
    for (n, t), v in ctx.values.items():
        by_var.setdefault(n, {})[t] = v
    fixed_values = dict(param_arrays)
    for (n, s), v in {**ctx.data_tensors, **ctx.initials}.items():
        fixed_values[n if rec.variables.get(n) and rec.variables[n].kind == "context" else key(n, s)] = v.data
    value_steps: dict = {}
    grad_steps: dict = {}
    for n, series in ctx.data.items():
        if rec.variables[n].kind == "context":
            fixed_values.setdefault(n, series)
        else:
            value_steps[n] = (range(1, len(series) + 1), lambda t, series=series: series[t - 1])
    for n, per in by_var.items():
        if n not in rec.variables:
            continue  # an internal split-off term (equations.fast_equations): not a node of the unrolled graph
        value_steps[n] = (per.keys(), lambda t, per=per: per[t].data)
        if backward and rec.variables[n].kind != "fed":
            grad_steps[n] = (per.keys(), lambda t, per=per: _grad_or_zeros(per[t], dtype))
    tensors = {key(n, t): v for (n, t), v in ctx.values.items() if n in rec.variables}
    tensors.update(leaves)
    grads: dict = {}
    copy_grads: dict[str, dict[int, np.ndarray]] = {}
    if backward:
        for name, leaf in leaves.items():
            grads[name] = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        for (name, t), copy in ctx.copies.items():
            copy_grads.setdefault(name, {})[t] = _grad_or_zeros(copy, dtype)
            tensors[f"{name}^({t})"] = copy
    # every step's fed value, also of a fed variable no equation reads
    fed = {key(n, t): value_steps[n][1](t) for n, v in rec.variables.items() if v.kind == "fed" and n in value_steps
           for t in value_steps[n][0]}
    context_grads = {name: _grad_or_zeros(t, dtype) for (name, s), t in ctx.data_tensors.items()
                     if s == 0 and rec.variables[name].kind == "context" and t.requires_grad}
    return Run(rec, T, mode, loss_value, NodeMap(fixed_values, value_steps), NodeMap(grads, grad_steps), copy_grads,
               step_losses, tensors, total, fed, context_grads=context_grads)


def _grad_or_zeros(t: Tensor, dtype) -> np.ndarray:
    return t.grad if t.grad is not None else np.zeros(t.shape, dtype=t.dtype if t.dtype.kind == "f" else dtype)
