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
from ..recurrence.unroll import key


def batch_sizes(rec, data) -> dict[str, int]:
    """The batch size (last axis) of each data array, by variable."""
    out = {}
    for name, var in rec.variables.items():
        if name in data and var.kind in ("input", "target", "context"):
            out[name] = data[name].shape[-1]
    return out


def steps_in(rec: Recurrence, data: dict) -> int:
    """The longest unroll the data covers (a variable read at t+k needs k steps beyond T)."""
    lengths = [len(a) - (rec.steps_needed(n, 1)[1] - 1) for n, a in data.items()
               if rec.variables[n].kind in ("input", "target")]
    if not lengths:
        raise DataError("no per-step data to take the number of steps from; pass T")
    T = min(lengths)
    if T < 1:
        raise DataError("the data is too short for a single step")
    return T


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
