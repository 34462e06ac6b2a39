"""Export a run — parameters, data, loss and every gradient — as a ``.npz`` file,
to check graphrnn against another framework.

Keys (all plain numeric or text arrays: ``np.load(path, allow_pickle=False)`` reads them):

``spec``, ``name``, ``mode``
    the spec's text, the architecture's name and the run's mode (text arrays).
``param/<name>``
    every parameter, as used (learned initial states such as ``h0`` included).
``init/<var>``
    the value of a variable outside the steps (``h[0]``; ``g[τ+1]`` for a backward
    state; ``y[0]`` for a fed-back target); ``init/<var>[s]`` when there are several.
``input/<name>``, ``target/<name>``, ``context/<name>``
    the data as used, stacked over time on axis 0: ``(T', size, B)`` for vectors,
    ``(T', B)`` for class labels (T' > T when the spec reads ``y[t+1]``); a context is
    ``(size, B)``.
``loss``
    the scalar Σ_t L^(t) (summed over the batch) whose gradients are exported.
``grad/<param>``
    ∂loss/∂param.
``grad/<var>``, ``value/<var>``
    each per-step variable's gradient and value stacked over time on axis 0 (steps
    1..T; a variable defined only at the last step has an axis of length 1).
``copy_grad/<param>``
    the dummy copies' gradients ∇W^(t) (§10.2.2), stacked over steps 1..T on axis 0;
    they add up to ``grad/<param>``.

>>> import numpy as np, tempfile, os
>>> from graphrnn.verify.export import export_npz
>>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
>>> _ = export_npz(path, "fig10_3", steps=3, batch=1)
>>> f = np.load(path, allow_pickle=False)
>>> f["grad/h"].shape, f["copy_grad/W"].shape
((3, 5, 1), (3, 5, 5))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..runtime import Run
from .check import VerifyError, _dtype, _load, _whole
from .perturb import parse_key
from .report import Report


def export_arrays(run: Run, inputs: dict) -> dict[str, np.ndarray]:
    """The arrays of :func:`export_npz` for a run and the data it used (see the module doc)."""
    rec, T = run.rec, run.T
    out: dict[str, np.ndarray] = {
        "spec": np.array(rec.spec.text),
        "name": np.array(rec.name),
        "mode": np.array(run.mode),
        "loss": np.array(run.loss, dtype=np.float64),
    }
    shapes = rec.all_param_shapes()
    for name in shapes:
        out[f"param/{name}"] = np.asarray(run.values[name])
    boundary: dict[str, list[int]] = {}
    for k in run.values:
        name, s = parse_key(k)
        if s is None or name not in rec.variables:
            continue
        var = rec.variables[name]
        outside = s < 1 or (s > T and var.kind == "computed")
        if outside and var.kind in ("computed", "input", "target"):
            boundary.setdefault(name, []).append(s)
    for name, steps in boundary.items():
        for s in sorted(steps):
            label = name if len(steps) == 1 else f"{name}[{s}]"
            out[f"init/{label}"] = np.asarray(run.values[f"{name}[{s}]"])
    for name, array in inputs.items():
        kind = rec.variables[name].kind
        out[f"{kind}/{name}"] = np.asarray(array)
    for name in shapes:
        out[f"grad/{name}"] = np.asarray(run.grads[name])
    for name, var in rec.variables.items():
        if var.kind != "computed":
            continue
        steps = [t for t in range(1, T + 1) if f"{name}[{t}]" in run.grads]
        if not steps:
            continue
        out[f"grad/{name}"] = np.stack([np.asarray(run.grads[f"{name}[{t}]"]) for t in steps])
        out[f"value/{name}"] = np.stack([np.asarray(run.values[f"{name}[{t}]"]) for t in steps])
    for name in run.copy_grads:
        out[f"copy_grad/{name}"] = run.stacked_copy_grads(name)
    for k, v in out.items():
        assert v.dtype != object, k  # nothing that would need pickle
    return out


def export_npz(path, source, *, steps: int = 5, batch: int = 2, seed: int = 0, dtype="float64",
               mode: str = "teacher", sizes: dict | None = None) -> dict[str, np.ndarray]:
    """Write the arrays of a run to ``path`` (``.npz``) and return them.

    ``source`` is a :class:`~graphrnn.verify.report.Report` (its run is exported), or
    a Recurrence / zoo name / spec path, run here on random data (``steps``,
    ``batch``, ``seed``, ``dtype``, ``mode``).
    """
    if isinstance(source, Report):
        run, inputs = source.run, source.inputs
    else:
        rec = _load(source, sizes)
        if not rec.losses:
            raise VerifyError(f"{rec.name} has no loss, so there are no gradients to export")
        T, B, dt = _whole(steps, "steps", 1), _whole(batch, "batch", 1), _dtype(dtype)
        inputs = rec.random_inputs(T, batch=B, seed=seed, dtype=dt)
        params = rec.init_params(seed=seed, dtype=dt)
        run = rec.run(inputs, params=params, T=T, mode=mode, dtype=dt, seed=seed)
        inputs = {n: (a.astype(dt) if np.asarray(a).dtype.kind == "f" else a) for n, a in inputs.items()}
    arrays = export_arrays(run, inputs)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:  # a file object: np.savez would append .npz to another suffix
            np.savez(fh, **arrays)
    except OSError as exc:
        raise VerifyError(f"cannot write {str(path)!r}: {exc}") from None
    return arrays
