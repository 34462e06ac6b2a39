"""Inference: :func:`predict` (forward only) and :func:`generate` (free-running from a prefix).

:func:`generate` runs the prefix once, then one step at a time, each step started from the
state the previous one ended in (``rec.run(..., initial_state=run.final_state)``): n new
symbols cost n one-step runs, O(T) in all, not the O(T²) of re-running a growing prefix.
The symbol chosen at step t is fed as the input of step t + 1 (one-hot): the
architecture must read its own output's classes as input, as a character-level model
does (``x[t]`` = character t, ``o[t]`` = scores of character t + 1).

>>> import numpy as np, graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"I": 4, "K": 4})
>>> out = generate(rec, rec.init_params(seed=1), prefix=[0, 1, 2], steps=5, greedy=True)
>>> out.shape, out.dtype
((5,), dtype('int64'))
"""

from __future__ import annotations

import numpy as np

from ..recurrence import Recurrence
from .errors import TrainError


def _data_for(rec: Recurrence, inputs: dict, T: int, B: int, dtype) -> dict:
    """``inputs`` completed with placeholder targets (a forward run computes the loss too; its value
    is then meaningless and not returned)."""
    data = dict(inputs)
    for name, var in rec.variables.items():
        if var.kind == "target" and name not in data:
            n = max(rec.steps_needed(name, T)[1], T)
            data[name] = np.zeros((n, B), dtype=np.int64) if var.is_label else np.zeros((n, var.rows, B), dtype)
    return data


def predict(rec: Recurrence, params: dict, data: dict, outputs=None, *, mode: str = "teacher",
            dtype=None, initial_state: dict | None = None, final_state: bool = False) -> dict[str, np.ndarray]:
    """Run forward only and return the ``outputs`` (default ``("o",)``) stacked over their steps:
    ``(steps, rows, B)`` arrays, with ``"loss"`` (the summed loss, when the data holds the targets) and,
    with ``final_state=True``, ``"final_state"`` (to start a later call from: ``initial_state=``).
    Targets missing from ``data`` are filled with placeholders (the loss is then left out).

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_3")
    >>> got = predict(rec, rec.init_params(), rec.random_inputs(6, batch=2))
    >>> got["o"].shape
    (6, 4, 2)
    """
    dtype = np.dtype(dtype or next(iter(params.values())).dtype)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    targets_given = all(n in data for n, v in rec.variables.items() if v.kind == "target")
    some = next((np.asarray(data[n]) for n, v in rec.variables.items() if v.kind == "input" and n in data), None)
    if some is None:
        raise TrainError(f"predict needs the inputs of {rec.name}: "
                         + ", ".join(n for n, v in rec.variables.items() if v.kind == "input"))
    T, B = some.shape[0], (some.shape[-1] if some.ndim == 3 else 1)
    options = {"params": params, "copies": False, "backward": False, "mode": mode, "dtype": dtype}
    if initial_state is not None:
        options["initial_state"] = initial_state
    run = rec.run(_data_for(rec, data, T, B, dtype), T=T, **options)
    names = ("o",) if outputs is None else tuple(outputs)
    out = {}
    for name in names:
        var = rec.variables.get(name)
        if var is None or var.kind != "computed":
            raise TrainError(f"{name!r} is not a computed variable of {rec.name}")
        steps = [t for t in range(1, T + 1) if f"{name}[{t}]" in run.values]
        out[name] = np.stack([np.asarray(run.values[f"{name}[{t}]"]) for t in steps])
    if targets_given:
        out["loss"] = float(run.loss)
    if final_state:
        out["final_state"] = {n: np.array(v) for n, v in run.final_state.items()}
    return out


def _choose(scores: np.ndarray, greedy: bool, temperature: float, rng) -> np.ndarray:
    """One class per column of ``scores``: the largest (greedy) or drawn from softmax(scores / temperature)."""
    if greedy:
        return scores.argmax(axis=0)
    z = scores.astype(np.float64) / temperature
    z -= z.max(axis=0, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=0, keepdims=True)
    u = rng.random(p.shape[1])
    return np.minimum((np.cumsum(p, axis=0) < u).sum(axis=0), p.shape[0] - 1)


def generate(rec: Recurrence, params: dict, prefix, steps: int, *, greedy: bool = False,
             temperature: float = 1.0, seed: int = 0, input: str = "x", output: str = "o",
             dtype=None) -> np.ndarray:
    """Continue ``prefix`` (class labels, ``(T,)`` or ``(T, B)`` for B sequences) by ``steps`` symbols.

    The prefix is read teacher-forced in one run; then each new symbol is chosen from
    ``output``'s scores (``greedy``: the most likely; otherwise drawn from
    softmax(scores / ``temperature``) with ``seed``), fed as the one-hot ``input`` of the
    next step, and the run goes on from the carried state.  Returns the new symbols
    (``(steps,)`` or ``(steps, B)``)."""
    var_in, var_out = rec.variables.get(input), rec.variables.get(output)
    if var_in is None or var_in.kind != "input":
        raise TrainError(f"{rec.name} has no input {input!r} to feed the generated symbols into")
    if var_out is None or var_out.kind != "computed" or var_out.rows is None:
        raise TrainError(f"{rec.name} has no output {output!r} of class scores")
    K = var_out.rows
    if var_in.rows != K:
        raise TrainError(f"generate feeds each chosen class of {output} ({K} classes) back as the one-hot input "
                         f"{input}, which has {var_in.rows} rows; they must be equal")
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise TrainError(f"steps must be a whole number >= 0, not {steps!r}")
    if not greedy and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise TrainError(f"temperature must be a number > 0, not {temperature!r}")
    labels = np.asarray(prefix)
    single = labels.ndim == 1
    labels = labels[:, None] if single else labels
    if labels.ndim != 2 or labels.shape[0] < 1:
        raise TrainError("the prefix must hold at least one class label: shape (T,) or (T, B)")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= K:
        raise TrainError(f"the prefix must hold class labels 0..{K - 1}")
    dtype = np.dtype(dtype or next(iter(params.values())).dtype)
    rng = np.random.default_rng(seed)
    B = labels.shape[1]

    def one_hot(lab):  # (T, B) -> (T, K, B)
        out = np.zeros((lab.shape[0], K, B), dtype=dtype)
        out[np.arange(lab.shape[0])[:, None], lab, np.arange(B)[None, :]] = 1
        return out

    got = predict(rec, params, {input: one_hot(labels)}, (output,), dtype=dtype, final_state=True)
    new = np.empty((steps, B), dtype=np.int64)
    for i in range(steps):
        new[i] = _choose(got[output][-1], greedy, temperature, rng)
        if i + 1 < steps:
            got = predict(rec, params, {input: one_hot(new[i:i + 1])}, (output,), dtype=dtype,
                          initial_state=got["final_state"], final_state=True)
    return new[:, 0] if single else new
