"""Checking what a run is given: the data arrays and the parameters.

Both strategies of the runtime, and the step-by-step check of :mod:`graphrnn.verify`,
read the data and parameters through these two functions, so a bad array gets the same
clear error (naming the variable, the step and the fix) wherever it enters.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> data = check_data(rec, rec.random_inputs(4, batch=2), np.float64)
>>> data["x"].shape, data["y"].dtype
((4, 3, 2), dtype('int64'))
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..recurrence.recurrence import Recurrence
from ..recurrence.spec import references
from ..recurrence.unroll import key


def batch_sizes(rec, data) -> dict[str, int]:
    """The batch size (last axis) of each data array, by variable."""
    out = {}
    for name, var in rec.variables.items():
        if name in data and var.kind in ("input", "target", "context"):
            out[name] = data[name].shape[-1]
    return out


def steps_in(rec: Recurrence, data: dict, strict: bool = True) -> int:
    """The number of steps the data covers (a variable read at t+k needs k steps beyond T).

    With ``strict`` (when a run is not given ``T``), arrays covering different numbers of steps
    are an error naming each one's length and what the spec reads of it: a quietly shorter run
    is more often a mistake than meant; pass ``T`` to run fewer steps than some array holds.

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_9")          # y[1..tau+1]: y[t+1] is the target of step t
    >>> data = rec.random_inputs(4)
    >>> len(data["y"]), steps_in(rec, data)
    (5, 4)
    """
    covered = {n: len(a) - (rec.steps_needed(n, 1)[1] - 1) for n, a in data.items()
               if rec.variables[n].kind in ("input", "target")}
    if not covered:
        raise DataError("no per-step data to take the number of steps from; pass T")
    T = min(covered.values())
    if T < 1:
        name = min(covered, key=covered.get)
        raise DataError(f"the data is too short for a single step: {name!r} has {len(data[name])} steps"
                        + _reads(rec, name))
    # arrays "agree" when each holds the run's steps and what is read beyond them (an array read only at
    # earlier steps, x[t-2], may hold all T steps: what it holds beyond the last read is not an error)
    natural = {n: len(data[n]) - max(rec.steps_needed(n, 1)[1] - 1, 0) for n in covered}
    if strict and len(set(natural.values())) > 1:
        longest = max(covered, key=covered.get)
        shortest = min(covered, key=covered.get)
        parts = ", ".join(f"{n!r} has {len(data[n])} steps"
                          + (f"{_reads(rec, n)}, enough for {c}" if _reads(rec, n) else "")
                          for n, c in covered.items())
        raise DataError(
            f"the data arrays cover different numbers of steps: {parts}; {key(shortest, len(data[shortest]) + 1)} "
            f"is missing "
            f"for a run as long as {longest!r}.  Give arrays covering the same steps, or pass T= (e.g. T={T}) "
            f"to run fewer steps than some array holds")
    return T


def _reads(rec: Recurrence, name: str) -> str:
    """``" (read up to y[t+1])"`` when ``name`` is read beyond the step being computed, else ``""``."""
    extra = rec.steps_needed(name, 1)[1] - 1
    return f" (read up to {key(name, 'tau+' + str(extra))})" if extra > 0 else ""


def check_data(rec: Recurrence, inputs, dtype) -> dict[str, np.ndarray]:
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
    batches = batch_sizes(rec, data)
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


def check_params(rec: Recurrence, params, dtype) -> dict[str, np.ndarray]:
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


# ------------------------------------------------------------------------------ carried state


def check_state(rec: Recurrence, eqs: dict, initial_state, batch: int, dtype) -> dict:
    """The ``initial_state`` of a run as ``{(variable, step <= 0): array}``, checked.

    ``initial_state`` maps a state (a computed variable read at an earlier step, ``h`` in
    ``W @ h[t-1]``) to its value before step 1: an ``(rows, B)`` array for a state read one step
    back, ``(k, rows, B)`` (steps 1-k .. 0, oldest first) for one read k steps back, as
    ``run.final_state`` gives them.  A state left out starts from its declared initial value;
    a given one replaces a learned initial value for this run.

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_3", sizes={"H": 3})
    >>> sorted(check_state(rec, rec.equations, {"h": np.ones((3, 2))}, 2, np.float64))
    [('h', 0)]
    """
    if initial_state is None:
        return {}
    if not isinstance(initial_state, dict):
        raise DataError(f"initial_state must be a dict of arrays keyed by state name (e.g. {{'h': array}}), "
                        f"not {type(initial_state).__name__}")
    delays = state_delays(rec, eqs)
    backward = {ref.name: ref.text for eq in eqs.values() for ref in references(eq.expr)
                if ref.name in eqs and ref.anchor == "t" and ref.delay < 0}
    out = {}
    for name, value in initial_state.items():
        if name in backward and name not in delays:
            raise DataError(f"initial_state[{name!r}]: {name} runs backwards in time (`{backward[name]}` reads a "
                            f"later step), so no value before step 1 starts it; only states read at an earlier "
                            f"step carry over ({', '.join(delays) or 'none here'})")
        if name not in delays:
            raise DataError(f"initial_state[{name!r}]: {name!r} is not a state read at an earlier step of "
                            f"{rec.name}; the states are: {', '.join(delays) or 'none'}")
        k, rows = delays[name], rec.variables[name].rows
        try:
            arr = np.asarray(value, dtype=dtype)
        except (TypeError, ValueError):
            raise DataError(f"initial_state[{name!r}] must be an array of numbers") from None
        one, several = (rows, batch), (k, rows, batch)
        if k == 1 and arr.shape == one:
            arr = arr[None]
        if arr.shape != several:
            want = f"{one}" if k == 1 else f"{several} (steps {1 - k} .. 0, oldest first)"
            raise DataError(f"initial_state[{name!r}] has shape {arr.shape}, but {name} before step 1 needs "
                            f"shape {want} for a batch of {batch}")
        if not np.all(np.isfinite(arr)):
            raise DataError(f"initial_state[{name!r}] holds non-finite values; a state must be finite numbers")
        for i in range(k):
            out[(name, i + 1 - k)] = arr[i]
    return out


def state_delays(rec: Recurrence, eqs: dict) -> dict[str, int]:
    """The states a run can start from and hand on: each computed vector read at an earlier step,
    with the largest delay it is read with."""
    from .equations import read_delays

    return {n: k for n, k in read_delays(eqs).items() if n in rec.variables and rec.variables[n].rows is not None}


def state_of(value, delays: dict, T: int) -> dict:
    """``{state: array}`` from ``value((name, step))`` at the last steps (``(rows, B)``, or ``(k, rows, B)``
    for a state read k steps back): what a next run takes as ``initial_state``."""
    out = {}
    for name, k in delays.items():
        steps = [np.array(value((name, s))) for s in range(T - k + 1, T + 1)]
        out[name] = steps[0] if k == 1 else np.stack(steps)
    return out


# ------------------------------------------------------------------------------ variable lengths


def check_lengths(lengths, batch: int, T_data: int | None) -> np.ndarray:
    """``lengths=`` of a run as an array of ``batch`` whole numbers from 1 to ``T_data``.

    ``lengths`` is a sequence of one length per sequence, or masks: a ``(T, B)`` array of ones
    then zeros in each column (a column's ones are its real steps).

    >>> check_lengths([3, 1], 2, 4).tolist()
    [3, 1]
    >>> check_lengths(np.array([[1, 1], [1, 0], [0, 0]]), 2, 3).tolist()
    [2, 1]
    """
    try:
        arr = np.asarray(lengths)
    except Exception:  # noqa: BLE001 - any conversion failure becomes one clear message
        arr = np.asarray(None)
    if arr.dtype.kind not in "biuf" or arr.ndim not in (1, 2):
        raise DataError(f"lengths= takes one whole number per sequence (e.g. lengths=[5, 3]) or a (T, B) mask "
                        f"of ones then zeros; got {lengths!r:.80}")
    if arr.ndim == 2:
        if not np.all((arr == 0) | (arr == 1)):
            raise DataError("a mask given as lengths= holds only 0 and 1")
        steps = arr.shape[0]
        counts = arr.sum(axis=0).astype(np.int64)
        for b, n in enumerate(counts):
            if not np.all(arr[:n, b] == 1):
                t = int(np.argmin(arr[:, b])) + 1
                raise DataError(f"the mask of sequence {b} is 0 at step {t} but 1 later: a sequence's real steps "
                                f"come first (ones, then zeros); pad at the end")
        arr = counts
        if T_data is None:
            T_data = steps
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise DataError(f"lengths= must be whole numbers, got {arr.tolist()}")
    arr = arr.astype(np.int64)
    if len(arr) != batch:
        raise DataError(f"lengths= gives {len(arr)} lengths for a batch of {batch} sequences; give one per "
                        f"sequence (the data's last axis)")
    for b, n in enumerate(arr):
        if n < 1:
            raise DataError(f"sequence {b} has length {n}; every sequence needs at least 1 step")
        if T_data is not None and n > T_data:
            raise DataError(f"sequence {b} has length {n}, but the data covers only {T_data} steps (pass "
                            f"arrays of at least {n} steps, padded at the end)")
    return arr


def padded_inputs(rec: Recurrence, pad, data: dict, lengths: np.ndarray, T: int, dtype) -> dict:
    """The data of the rewritten recurrence ``pad`` (:func:`graphrnn.recurrence.padded.padded`):
    ``data``, the masks (1 at a sequence's steps 1..n_b, 0 after) and, for each read of data
    at the last step, each sequence's own step n_b + k placed at step T."""
    out = dict(data)
    B = len(lengths)
    for name, rows in pad.masks.items():
        steps = max(pad.rec.steps_needed(name, T)[1], T)
        on = (np.arange(1, steps + 1)[:, None] <= lengths[None, :]).astype(dtype)
        out[name] = np.repeat(on[:, None, :], rows, axis=1)
    for name, source in pad.copies.items():
        out[name] = data[source]
    for name, (source, k) in pad.at_tau.items():
        var, series = rec.variables[source], data[source]
        arr = np.zeros((T,) + series.shape[1:], dtype=series.dtype)
        for b in range(B):
            s = int(lengths[b]) + k
            if 1 <= s <= len(series):
                arr[T - 1, ..., b] = series[s - 1, ..., b]
            elif var.init is None:
                raise DataError(f"{key(source, 'tau' if not k else f'tau{k:+d}')} of sequence {b} (length "
                                f"{lengths[b]}) is {key(source, s)}, outside the data (steps 1..{len(series)})")
        out[name] = arr
    return out
