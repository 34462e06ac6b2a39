"""Running an unrolled recurrence on the engine: values, the loss and every gradient.

:func:`run` evaluates the plan of :mod:`.unroll` on numpy data.  Each use of a
parameter at step t goes through its own identity node ``W^(t)`` — the book's
dummy copies (§10.2.2) — so the contribution of every step to ∇W is a real
gradient in the graph, and the contributions add up to ∇W.  ``copies=False`` is
the fast path of :mod:`.batched`; :mod:`.memory` adds checkpointed and truncated
back-propagation through time on the same pieces.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import DataError, SpecError
from .batched import step_slice
from .recurrence import Recurrence
from .spec import Bin, Call, Name, Num, Ref, Transpose, Unary
from .stepcode import placeholder_of
from .unroll import key, plan_blocks


# ------------------------------------------------------------------------------ running


@dataclass
class Run:
    """What a run of an unrolled recurrence produced.

    ``values`` and ``grads`` are keyed like the unrolled graph (``"h[3]"``, ``"W"``);
    ``grads`` holds ∂loss/∂(node) for every parameter and computed per-step variable
    (zeros where the loss does not depend on it).  ``copy_grads[W][t]`` is the
    gradient of the dummy copy W^(t) (§10.2.2); over t they add up to ``grads[W]``.
    ``tensors`` are the engine tensors, for drawing the op-level graph (only the
    parameters when a compiled ``program`` ran it: ``run.program.describe()`` says how).
    """

    rec: Recurrence
    T: int
    mode: str
    loss: float
    values: Mapping[str, np.ndarray]
    grads: Mapping[str, np.ndarray]
    copy_grads: dict[str, dict[int, np.ndarray]]
    step_losses: dict[int, float]
    tensors: dict[str, Tensor] = field(repr=False)
    loss_tensor: Tensor | None = field(default=None, repr=False)
    fed: dict[str, np.ndarray] = field(default_factory=dict)
    #: the compiled program that computed this run (program.py), when the fast path used one
    program: object | None = field(default=None, repr=False)

    def stacked(self, name: str, which: str = "values") -> np.ndarray:
        """``name``'s value (or gradient, ``which="grads"``) at steps 1..T stacked on axis 0."""
        source = self.values if which == "values" else self.grads
        return np.stack([source[key(name, t)] for t in range(1, self.T + 1)])

    def stacked_copy_grads(self, param: str) -> np.ndarray:
        """The dummy-copy gradients of ``param`` at steps 1..T on axis 0 (zeros where unused)."""
        shape = self.grads[param].shape
        per = self.copy_grads.get(param, {})
        return np.stack([per.get(t, np.zeros(shape)) for t in range(1, self.T + 1)])

    def __repr__(self):
        return f"<Run of {self.rec.name}: T={self.T}, mode={self.mode}, loss={self.loss:.6g}>"


class _Context:
    """The state of one run: data, parameters, dummy copies and computed values."""

    def __init__(self, rec, T, data, params, dtype, mode, p, rng, copies):
        self.rec, self.T, self.data, self.dtype = rec, T, data, dtype
        self.mode, self.p, self.rng, self.copies_wanted = mode, p, rng, copies
        self.values: dict[tuple[str, int], Tensor] = {}
        self.params = params
        self.copies: dict[tuple[str, int], Tensor] = {}
        self.data_tensors: dict[tuple[str, int], Tensor] = {}
        self.initials: dict[tuple[str, int], Tensor] = {}
        self.batch = next(iter(_batch_sizes(rec, data).values()), 1)
        self.learned = rec.learned_inits()
        self.stacked_mode = False  # see batched.Stacked
        self.lean = False  # release what no VJP reads (the fast path; see _release)
        self.scan = True  # on the fast path, run recurrent blocks as one op (scan.py)
        self.scans: list = []
        self.eqs: dict = {}
        # variables computed for several steps at once: name -> [(tensor, first step, last step), ...]
        self.batched: dict[str, list[tuple[Tensor, int, int]]] = {}
        self.stacked: dict = {}
        self.slices: dict[tuple[str, int], Tensor] = {}
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
            t = self.data_tensors[(name, 0)] = Tensor(self.data[name], name=name)
        return t

    def ref(self, name: str, s: int, needed_by: str) -> Tensor:
        value = self.values.get((name, s))
        if value is not None:
            return value
        parts = self.batched.get(name)
        if parts is not None:
            value = self.slices.get((name, s))
            if value is not None:
                return value
            for whole, a, b in reversed(parts):
                if a <= s <= b:
                    value = self.slices[(name, s)] = step_slice(whole, s - a, self.batch)
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


def _batch_sizes(rec, data) -> dict[str, int]:
    out = {}
    for name, var in rec.variables.items():
        if name in data and var.kind in ("input", "target", "context"):
            out[name] = data[name].shape[-1]
    return out


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



def _compile(e, rec: Recurrence, eq_name: str):
    """Turn an expression into a function ``(ctx, t) -> Tensor``."""
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
        return _compile(e.operand, rec, eq_name)
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
    kids = [_compile(o, rec, eq_name) for o in operands]
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
# all steps are computed at once (batched.Stacked), one number per column instead.


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


# ------------------------------------------------------------------------------ data checks


def _check_data(rec: Recurrence, inputs, dtype) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict):
        raise DataError(f"inputs must be a dict of arrays keyed by variable name, not {type(inputs).__name__}")
    data = {}
    wanted = {n: v for n, v in rec.variables.items() if v.kind in ("input", "target", "context")}
    for name in inputs:
        if name not in wanted:
            raise DataError(f"{name!r} is not an input, target or context of {rec.name} "
                            f"(those are: {', '.join(wanted) or 'none'})")
    for name, var in wanted.items():
        if name not in inputs:
            raise DataError(f"missing the array for {var.kind} {name!r}: expected shape {_expected(var)}")
        try:
            arr = np.asarray(inputs[name])
        except Exception as exc:  # noqa: BLE001 - any conversion failure becomes one clear message
            raise DataError(f"{name!r} cannot be read as an array: {exc}") from None
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{name!r} must hold numbers, not dtype {arr.dtype}")
        if var.is_label:
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise DataError(f"{name!r} holds class labels: expected shape {_expected(var)}, got {arr.shape}")
            if arr.dtype.kind == "f":
                if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                    raise DataError(f"{name!r} holds class labels, which must be whole numbers")
            arr = arr.astype(np.int64, copy=False)
            if arr.size and (arr.min() < 0 or arr.max() >= var.classes):
                bad = (arr < 0) | (arr >= var.classes)
                step, col = np.argwhere(bad)[0]
                raise DataError(f"{key(name, step + 1)} (sequence {col}) is class {arr[step, col]}, outside "
                                f"0..{var.classes - 1}")
        else:
            arr = arr.astype(dtype, copy=False)
            if var.kind == "context":
                arr = arr[:, None] if arr.ndim == 1 else arr
                ok = arr.ndim == 2 and arr.shape[0] == var.rows
            else:
                arr = arr[:, :, None] if arr.ndim == 2 else arr
                ok = arr.ndim == 3 and arr.shape[1] == var.rows
            if not ok:
                raise DataError(f"{name!r}: expected shape {_expected(var)}, got {np.shape(inputs[name])}")
            if not _all_finite(arr):
                where = np.argwhere(~np.isfinite(arr))[0]
                at = name if var.kind == "context" else key(name, where[0] + 1)
                raise DataError(f"{at} holds {arr[tuple(where)]}: the data must be finite numbers")
        data[name] = arr
    batches = _batch_sizes(rec, data)
    if len(set(batches.values())) > 1:
        raise DataError("the arrays disagree on the batch size (their last axis): "
                        + ", ".join(f"{n}: {b}" for n, b in batches.items()))
    return data


def _all_finite(arr: np.ndarray) -> bool:
    """No NaN or infinity in ``arr``: a finite sum proves it in one pass without a mask (a sum
    that overflows, or any non-finite entry, leads to the entry-by-entry test)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(arr)):
            return True
    return bool(np.all(np.isfinite(arr)))


def _expected(var) -> str:
    if var.kind == "context":
        return f"({var.rows}, B)"
    if var.is_label:
        return "(T, B) integer class labels"
    return f"(T, {var.rows}, B)"


def _check_params(rec: Recurrence, params, dtype) -> dict[str, np.ndarray]:
    shapes = rec.all_param_shapes()
    out = {}
    for name in params:
        if name not in shapes:
            raise DataError(f"{name!r} is not a parameter of {rec.name} (those are: {', '.join(shapes)})")
    for name, shape in shapes.items():
        if name not in params:
            raise DataError(f"missing parameter {name!r} of shape {shape}; rec.init_params() makes them all")
        arr = np.asarray(params[name], dtype=dtype)
        if arr.ndim == 1 and shape[1] == 1:
            arr = arr[:, None]
        if arr.shape != shape:
            raise DataError(f"parameter {name!r} has shape {arr.shape}, but the equations need {shape}")
        if not _all_finite(arr):
            raise DataError(f"parameter {name!r} holds non-finite values")
        out[name] = arr
    return out


# ------------------------------------------------------------------------------ run


def _override(value: Tensor, array, where: str) -> Tensor:
    array = np.asarray(array)
    if array.shape != value.shape:
        raise DataError(f"the override for {where} has shape {array.shape}, but {where} has shape {value.shape}")
    return Tensor(array.astype(value.dtype, copy=False), name=where)


def run(rec: Recurrence, inputs, params=None, T=None, mode="teacher", *, p: float = 0.5, seed: int = 0,
        dtype=np.float64, backward: bool = True, copies: bool = True, overrides=None,
        retain_graph: bool = False, checkpoint: int | bool | None = None,
        truncate: tuple[int, int] | None = None) -> Run:
    """Unroll ``rec`` over ``T`` steps, evaluate it on ``inputs`` and back-propagate the loss.

    ``inputs`` maps each input/target to an array stacked over time on axis 0:
    ``(T, rows, B)`` for vectors, ``(T, B)`` for class labels, ``(rows, B)`` for a
    context.  ``params`` defaults to ``rec.init_params()``.  ``T`` defaults to the
    length of the data.  ``mode`` is ``"teacher"`` (teacher forcing: the true
    targets are fed back), ``"free"`` (the model's own outputs, without gradient)
    or ``"scheduled"`` (the model's output with probability ``p`` at each step and
    sequence, drawn with ``seed``).

    With ``copies`` (the default) every step is evaluated on its own and every use
    of a parameter at step t goes through a dummy copy W^(t) whose gradient is
    kept (``Run.copy_grads``).  ``copies=False`` is the fast path: no dummy copies,
    and every variable that no cycle passes through (the outputs, the losses, the
    input projections) is computed for all steps at once (see :mod:`.batched`);
    values and gradients are the same.

    ``overrides`` maps node names (``"h[3]"``) to arrays that replace those nodes'
    values once computed, so everything downstream sees them (finite differences
    "inside the unrolled graph", §10.2.2); an overridden node is a constant.  A
    dummy copy (``"W^(3)"``) can be overridden too: only step 3 then uses that value.
    ``retain_graph`` keeps the engine graph after the backward pass, so that
    ``graphrnn.grad(run.tensors["L[5]"], ...)`` can walk it again.

    Memory (see :mod:`.memory`): ``checkpoint=True`` (or a segment length) keeps
    only about √T stored steps and recomputes each segment during the backward
    pass — the same gradients in a fraction of the memory; ``truncate=(k1, k2)``
    back-propagates, every k1 steps, the losses of those steps through at most k2
    steps (truncated BPTT).  Both give the loss, the per-step losses and the
    parameters' gradients, not every per-step value and gradient.
    """
    from .batched import batched_members, fast_equations

    if mode not in ("teacher", "free", "scheduled"):
        raise ValueError(f"mode must be 'teacher', 'free' or 'scheduled', not {mode!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the scheduled-sampling probability p must lie in [0, 1], not {p}")
    dtype = np.dtype(dtype)
    data = _check_data(rec, inputs, dtype)
    if T is None:
        # the longest unroll the data covers: a variable read at t+k needs k steps beyond T
        lengths = [len(a) - (rec.steps_needed(n, 1)[1] - 1) for n, a in data.items()
                   if rec.variables[n].kind in ("input", "target")]
        if not lengths:
            raise DataError("no per-step data to take the number of steps from; pass T")
        T = min(lengths)
        if T < 1:
            raise DataError("the data is too short for a single step")
    fast = (not copies or bool(checkpoint) or bool(truncate)) and not overrides  # segments keep no copies
    eqs = fast_equations(rec, mode) if fast else rec.mode_equations(mode)
    blocks = _cached_blocks(rec, eqs, T, (mode, fast))
    batched = batched_members(rec, eqs, blocks) if fast else set()
    param_arrays = _check_params(rec, rec.init_params(dtype=dtype) if params is None else params, dtype)
    leaves = {name: Tensor(arr, requires_grad=backward, name=name) for name, arr in param_arrays.items()}
    ctx = _Context(rec, T, data, leaves, dtype, mode, p, np.random.default_rng(seed), copies and backward)
    ctx.overrides = overrides or {}
    ctx.wants_grads = backward
    ctx.lean = fast and backward
    ctx.eqs = eqs
    compiled = _cached_compiled(rec, eqs, (mode, fast))
    if fast and not (checkpoint or truncate or retain_graph or E.tensor.MODE.anomaly):
        program = _cached_program(rec, eqs, blocks, batched, compiled, T, ctx.batch, dtype, data, param_arrays,
                                  mode)
        if program is not None:
            return _run_program(program, rec, T, mode, data, param_arrays, backward)
    if checkpoint or truncate:
        def segment_context():
            seg = _Context(rec, T, data, leaves, dtype, mode, p, np.random.default_rng(seed), False)
            seg.lean, seg.eqs = True, eqs  # segments take the fast path too
            return seg

        return _run_in_segments(rec, eqs, blocks, batched, compiled, T, mode, leaves, param_arrays, backward,
                                checkpoint, truncate, segment_context, data, dtype, ctx.batch)
    values = ctx.values
    step_losses: dict[int, float] = {}
    with (E.enable_grad() if backward else E.no_grad()), _no_cyclic_gc():
        total = None
        for a, b in _chunks(rec, eqs, mode, T, ctx, batched):
            part = evaluate_steps(ctx, blocks, batched, compiled, a, b, step_losses)
            if part is not None:
                total = part if total is None else total + part
        for value in list(values.values()) + [whole for parts in ctx.batched.values() for whole, _, _ in parts]:
            if value.requires_grad:
                value.retain_grad()
        loss_value = float(total.data) if total is not None else float("nan")
        if not np.isfinite(loss_value) and total is not None:
            bad = next((key(n, t) for (n, t), v in values.items() if not np.all(np.isfinite(v.data))), "the loss")
            raise DataError(f"the forward pass produced a non-finite value first at {bad}; the parameters or "
                            f"data are too large (try smaller weights, or gr.detect_anomaly() to find the op)")
        if backward:
            if total is None:
                raise SpecError(_NO_LOSS.format(rec.name))
            total.backward(retain_graph=retain_graph)
    return _collect(rec, ctx, T, mode, param_arrays, leaves, total, loss_value, step_losses, backward)


_NO_LOSS = ("{} has no loss to differentiate; add `loss NAME` naming a per-step variable such as "
            "L[t] = cross_entropy(o[t], y[t])")

#: the size of one array of a chunk of steps computed at once (see _chunks)
CHUNK_BYTES = 1 << 17


def _chunks(rec, eqs, mode, T, ctx, batched) -> list[tuple[int, int]]:
    """Consecutive ranges of steps for the fast path to compute one after the other.

    Computing a variable for all T steps at once makes arrays T times the size of
    one step's; past a few hundred kilobytes each one is fresh memory from the
    operating system, and touching it costs more than the matrix products save.
    So a recurrence that only looks back in time runs in chunks of steps whose
    arrays stay below :data:`CHUNK_BYTES`; one that looks forward (``g[t+1]``),
    draws random numbers or has nothing to batch runs as one range."""
    from .memory import segmentable

    if not batched or not segmentable(rec, eqs, mode):
        return [(1, T)]
    rows = max((v.rows or 1) for v in rec.variables.values() if v.kind in ("computed", "fed"))
    per_step = rows * ctx.batch * ctx.dtype.itemsize
    k = max(1, CHUNK_BYTES // per_step)
    return [(a, min(a + k - 1, T)) for a in range(1, T + 1, k)]


def _run_in_segments(rec, eqs, blocks, batched, compiled, T, mode, leaves, param_arrays, backward,
                     checkpoint, truncate, ctx_factory, data, dtype, B) -> Run:
    from . import memory

    if checkpoint and truncate:
        raise ValueError("choose checkpoint or truncate, not both")
    what = "checkpointed BPTT" if checkpoint else "truncated BPTT"
    memory.check_segmentable(rec, eqs, mode, what)
    if not backward:
        raise ValueError(f"{what} is a way to compute gradients; with backward=False, run normally")
    delays = memory.read_delays(eqs)
    step_losses: dict[int, float] = {}
    if checkpoint:
        segment = memory.default_segment(T) if checkpoint is True else int(checkpoint)
        if segment < 1:
            raise ValueError(f"the checkpoint segment must be at least 1 step, not {checkpoint}")
        checkpoint = segment
    else:
        k1, k2 = truncate
        if not (isinstance(k1, int) and isinstance(k2, int) and 1 <= k1 <= k2):
            raise ValueError(f"truncate=(k1, k2) needs whole numbers with 1 <= k1 <= k2 (every k1 steps, "
                             f"back-propagate k2 steps); got {truncate!r}")
    got = None
    if not E.tensor.MODE.anomaly and PROGRAM:
        def segment_program(n):
            part = {name: d if rec.variables[name].kind == "context" else d[:n] for name, d in data.items()}
            return _cached_program(rec, eqs, _cached_blocks(rec, eqs, n, (mode, True)),
                                   batched, compiled, n, B, dtype, part, param_arrays, mode)

        got = memory.program_segments(rec, eqs, T, data, param_arrays, mode, dtype, segment_program, checkpoint,
                                      truncate, delays)
    if got is not None:
        loss, per_step, grads = got
        step_losses = StepLosses(per_step) if rec.losses else {}
    else:
        with _no_cyclic_gc():
            if checkpoint:
                loss = memory.checkpointed(ctx_factory, blocks, batched, compiled, eqs, T, checkpoint, delays,
                                           step_losses)
            else:
                loss = memory.truncated(ctx_factory, blocks, batched, compiled, T, k1, k2, delays, step_losses)
        grads = {name: leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
                 for name, leaf in leaves.items()}
    return Run(rec, T, mode, loss, NodeMap(dict(param_arrays), {}), NodeMap(grads, {}), {}, step_losses,
               dict(leaves), None, {})


def evaluate_steps(ctx, blocks, batched: set, compiled: dict, a: int, b: int, step_losses: dict,
                   loss_from: int | None = None):
    """Evaluate steps ``a..b`` of every block into ``ctx`` and return the loss of the steps
    from ``loss_from`` (default ``a``) to ``b`` as a tensor (``None`` when there is none).

    Values the steps need from before ``a`` must already be in ``ctx.values``; the
    variables in ``batched`` are computed for the whole range at once."""
    from .batched import Stacked
    from .scan import run_block, scannable

    losses = set(ctx.rec.losses)
    loss_from = a if loss_from is None else loss_from
    # every computed value gets a gradient, even one computed from data alone (no parameter upstream)
    grad_everywhere = ctx.wants_grads and E.is_grad_enabled()
    fed = {n for n, v in ctx.rec.variables.items() if v.kind == "fed"}
    overrides = ctx.overrides
    values = ctx.values
    total = None
    for block in blocks:
        if block.members[0] in batched:
            name = block.members[0]
            whole = compiled[name](Stacked(ctx, name, a, b), 0)
            if grad_everywhere and not whole.requires_grad and whole.dtype.kind == "f":
                whole = Tensor(whole.data, requires_grad=True, name=f"{name}[{a}..{b}]")
            ctx.batched.setdefault(name, []).append((whole, a, b))
            if name in losses:
                counted = whole if loss_from == a else E.getitem(whole, slice((loss_from - a) * ctx.batch, None))
                total = E.sum(counted) if total is None else total + E.sum(counted)
                per_step = whole.data.reshape(b - a + 1, -1).sum(axis=1)
                for t in range(loss_from, b + 1):
                    step_losses[t] = step_losses.get(t, 0.0) + float(per_step[t - a])
            continue
        steps = block.steps
        if a != 1 or b != ctx.T:  # a segment of a causal recurrence: its blocks run forwards in time
            steps = steps[bisect.bisect_left(steps, a, key=_step_of):bisect.bisect_right(steps, b, key=_step_of)]
        if ctx.lean and block.cyclic and ctx.scan and scannable(ctx.rec, ctx.eqs, block.members, ctx.batch):
            run_block(ctx, block.members, ctx.eqs, compiled, steps, a, b)  # the loop as one op (scan.py)
            continue
        for name, t in steps:
            value = compiled[name](ctx, t)
            if not isinstance(value, Tensor):
                value = Tensor(np.full((1, 1), value, dtype=ctx.dtype))
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
def _no_cyclic_gc():
    """Pause Python's cycle collector: a run allocates many tensors but makes no reference
    cycles, and collections that rescan them all would make a long run quadratic."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cached_blocks(rec, eqs, T, tag):
    cache = rec.__dict__.setdefault("_blocks_cache", {})
    got = cache.get((tag, T))
    if got is None:
        if len(cache) > 16:
            cache.clear()
        got = cache[(tag, T)] = plan_blocks(eqs, T)
    return got


#: on the fast path, run a recurrence through a compiled :class:`~.program.Program` when it can
PROGRAM = True


def _cached_program(rec, eqs, blocks, batched, compiled, T, B, dtype, data, params, mode):
    """The compiled program for this kind of run (None when the recurrence needs the engine)."""
    from .program import NotCompilable, Program

    if not PROGRAM:
        return None
    cache = rec.__dict__.setdefault("_programs", {})
    tag = (mode, T, B, dtype.str, tuple(sorted((n, a.shape) for n, a in data.items())))
    if tag in cache:
        cache[tag] = cache.pop(tag)  # the most recently used last
        return cache[tag]
    try:
        program = Program(rec, eqs, blocks, batched, compiled, T, B, dtype, data, params, mode)
    except NotCompilable:
        program = None
    while len(cache) >= 8:
        cache.pop(next(iter(cache)))
    cache[tag] = program
    return program


def _run_program(program, rec, T, mode, data, param_arrays, backward) -> Run:
    has_loss = any(n in program.layouts for n in rec.losses)
    if backward and not has_loss:
        raise SpecError(_NO_LOSS.format(rec.name))
    ws, loss, grads = program.run(param_arrays, data, backward)
    if not has_loss:
        loss = float("nan")  # as on the engine: there is nothing to sum
    elif not np.isfinite(loss):
        bad = program.first_non_finite(ws) or "the loss"
        ws.release()
        raise DataError(f"the forward pass produced a non-finite value first at {bad}; the parameters or "
                        f"data are too large (try smaller weights, or gr.detect_anomaly() to find the op)")
    fixed_values = dict(param_arrays)
    value_steps: dict = {}
    grad_steps: dict = {}
    for n, series in data.items():
        if rec.variables[n].kind == "context":
            fixed_values[n] = series
        else:
            value_steps[n] = (range(1, len(series) + 1), lambda t, series=series: series[t - 1])
    learned = rec.learned_inits()
    for n, lay in program.layouts.items():
        var = rec.variables.get(n)
        if var is None:
            continue  # an internal split-off term (batched.fast_equations)
        inside = range(1, T + 1) if lay.kind == "computed" else range(1, len(data[n]) + 1)
        for s in range(lay.lo, lay.hi + 1):
            if s not in inside:  # an initial value, as the engine names it
                fixed_values[key(n, s)] = param_arrays[learned[n]] if n in learned else ws.steps(n, s, s)
        if lay.kind != "computed":
            continue
        scalar = var.shape == ()
        value_steps[n] = (range(1, T + 1), _workspace_columns(ws.steps, n, scalar, np.sum))
        if backward:
            grad_steps[n] = (range(1, T + 1), _workspace_columns(ws.grad_steps, n, scalar, np.mean))
    leaves = {n: Tensor(a, name=n) for n, a in param_arrays.items()}
    for n, leaf in leaves.items():
        leaf.grad = grads[n] if backward else None
    step_losses = StepLosses(program.step_losses(ws)) if rec.losses else {}
    run = Run(rec, T, mode, loss, NodeMap(fixed_values, value_steps), NodeMap(dict(grads) if backward else {},
              grad_steps), {}, step_losses, leaves, None, {}, program)
    ws.lend(run)
    return run


def _workspace_columns(view, name, scalar, reduce):
    def fetch(t):
        cols = view(name, t, t)
        return np.asarray(reduce(cols)) if scalar else cols

    return fetch


def _cached_compiled(rec, eqs, tag):
    cache = rec.__dict__.setdefault("_compiled_cache", {})
    got = cache.get(tag)
    if got is None:
        got = cache[tag] = {name: _compile(eq.expr, rec, name) for name, eq in eqs.items()}
    return got


class StepLosses(Mapping):
    """The loss of each step, ``{t: loss}`` for t = 1..T, kept as one array (not T Python floats)."""

    def __init__(self, per_step: np.ndarray):
        self._values = per_step

    def __getitem__(self, t) -> float:
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 1 <= t <= len(self._values):
            return float(self._values[t - 1])
        raise KeyError(t)

    def __iter__(self):
        return iter(range(1, len(self._values) + 1))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self):
        return repr(dict(self))


class NodeMap(Mapping):
    """A read-only mapping from unrolled-graph node names (``"h[3]"``, ``"W"``) to arrays.

    Per-step entries are produced when they are read (a slice of a variable
    computed for all steps at once costs nothing until then), so collecting a
    run of 100,000 steps does not build 100,000 keys up front.
    """

    def __init__(self, fixed: dict, per_step: dict):
        self._fixed = fixed  # name -> array
        self._per_step = per_step  # variable -> (steps, function of t giving the array)

    def __getitem__(self, name: str) -> np.ndarray:
        got = self._fixed.get(name)
        if got is not None:
            return got
        var, bracket, rest = name.partition("[") if isinstance(name, str) else ("", "", "")
        entry = self._per_step.get(var)
        if entry is not None and rest.endswith("]"):
            try:
                t = int(rest[:-1])
            except ValueError:
                raise KeyError(name) from None
            steps, fetch = entry
            if t in steps:
                return fetch(t)
        raise KeyError(name)

    def __iter__(self):
        yield from self._fixed
        for var, (steps, _) in self._per_step.items():
            for t in steps:
                yield key(var, t)

    def __len__(self) -> int:
        return len(self._fixed) + sum(len(steps) for steps, _ in self._per_step.values())

    def copy(self) -> dict:
        return dict(self)

    def __repr__(self):
        return f"<NodeMap of {len(self)} nodes>"


def _collect(rec, ctx, T, mode, param_arrays, leaves, total, loss_value, step_losses, backward) -> Run:
    """Gather values and gradients, keyed like the unrolled graph."""
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
        value_steps[n] = (per.keys(), lambda t, per=per: per[t].data)
        if backward and rec.variables[n].kind != "fed":
            grad_steps[n] = (per.keys(), lambda t, per=per: _grad_or_zeros(per[t], dtype))
    tensors = {key(n, t): v for (n, t), v in ctx.values.items()}
    tensors.update(leaves)
    for name, parts in ctx.batched.items():
        if name not in rec.variables:
            continue  # an internal split-off term (batched.fast_equations)
        for whole, a, b in parts:
            tensors[f"{name}[{a}..{b}]"] = whole
        scalar = rec.variables[name].shape == ()
        value_steps[name] = (range(1, T + 1), _step_columns(parts, B, scalar, np.sum, "data"))
        if backward:
            grad_steps[name] = (range(1, T + 1), _step_columns(parts, B, scalar, np.mean, "grad"))
    for plan in ctx.scans:  # a scanned variable's gradient at a step includes the later steps' share
        if backward:
            for name in plan.members:
                grad_steps[name] = (range(1, T + 1), _scanned_grads(ctx.scans, name, rec.variables[name].rows, B, dtype))
    grads: dict = {}
    copy_grads: dict[str, dict[int, np.ndarray]] = {}
    if backward:
        for name, leaf in leaves.items():
            grads[name] = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        for (name, t), copy in ctx.copies.items():
            copy_grads.setdefault(name, {})[t] = _grad_or_zeros(copy, dtype)
            tensors[f"{name}^({t})"] = copy
    fed = {key(n, t): v.data for (n, t), v in ctx.values.items() if rec.variables.get(n) and rec.variables[n].kind == "fed"}
    return Run(rec, T, mode, loss_value, NodeMap(fixed_values, value_steps), NodeMap(grads, grad_steps), copy_grads,
               step_losses, tensors, total, fed)


def _grad_or_zeros(t: Tensor, dtype) -> np.ndarray:
    return t.grad if t.grad is not None else np.zeros(t.shape, dtype=t.dtype if t.dtype.kind == "f" else dtype)


def _scanned_grads(plans, name, rows, B, dtype):
    def fetch(t):
        for plan in plans:
            g = plan.step_grads.get((name, t))
            if g is not None:
                return g
        return np.zeros((rows, B), dtype=dtype)

    return fetch


def _step_columns(parts, B: int, scalar: bool, reduce, field: str):
    """A function of t giving step t's columns of the tensors holding several steps side by side
    (``field`` "data" or "grad"; a loss gives one number)."""
    starts = [a for _, a, _ in parts]

    def fetch(t):
        whole, a, _ = parts[bisect.bisect_right(starts, t) - 1]
        array = getattr(whole, field)
        if array is None:
            array = np.zeros_like(whole.data)
        cols = slice((t - a) * B, (t - a + 1) * B)
        return np.asarray(reduce(array[cols])) if scalar else array[..., cols]

    return fetch
