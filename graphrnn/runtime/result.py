"""What a run produced: :class:`Run`, and the read-only mappings it hands out.

Every strategy of :func:`graphrnn.runtime.run` returns a :class:`Run`; its ``values``
and ``grads`` are :class:`NodeMap` objects keyed like the unrolled graph (``"h[3]"``,
``"W"``), which make a step's entry when it is read, so a run of 100,000 steps does not
build 100,000 keys up front.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> run = rec.run(rec.random_inputs(4, batch=2), copies=False)
>>> run.values["h[2]"].shape, len(run.step_losses)
((3, 2), 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..engine.tensor import Tensor
from ..recurrence.recurrence import Recurrence
from ..recurrence.unroll import key


NO_LOSS = ("{} has no loss to differentiate; add `loss NAME` naming a per-step variable such as "
           "L[t] = cross_entropy(o[t], y[t])")


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
    #: ∂loss/∂C for each context C, ``(rows, B)``: what an encoder that computed C back-propagates
    #: (fig. 10.12).  Filled by every strategy when the run goes backward (a float context); empty otherwise
    context_grads: dict[str, np.ndarray] = field(default_factory=dict)


    @property
    def final_state(self) -> dict:
        """The states at the last steps, ``{"h": (rows, B)}`` (``(k, rows, B)`` for a state read k steps
        back, oldest first): pass them as ``initial_state=`` to a run of the steps that follow.  Read
        from the run's values when first asked for (the runtime leaves a function or a dict here)."""
        got = self.__dict__.get("_final_state")
        if callable(got):
            got = self.__dict__["_final_state"] = got()
        return {} if got is None else got

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


class StepLosses(Mapping):
    """The loss of each step, ``{t: loss}`` for t = ``first``..T, kept as one array (not T Python floats);
    ``per_step`` holds steps 1..T (a loss of the last step only, ``L[tau]``, has ``first = T``)."""

    def __init__(self, per_step: np.ndarray, first: int = 1):
        self._values = per_step
        self._first = first

    def __getitem__(self, t) -> float:
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and self._first <= t <= len(self._values):
            return float(self._values[t - 1])
        raise KeyError(t)

    def __iter__(self):
        return iter(range(self._first, len(self._values) + 1))

    def __len__(self) -> int:
        return max(len(self._values) - self._first + 1, 0)

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
                name = key(var, t)
                if name not in self._fixed:  # a taped run also keeps the data it read as fixed entries
                    yield name

    def __len__(self) -> int:
        return len(self._fixed) + sum(len(steps) for steps, _ in self._per_step.values()) - self._both()

    def _both(self) -> int:
        """How many fixed entries are also per-step entries (each is listed once)."""
        count = 0
        for name in self._fixed:
            var, bracket, rest = name.partition("[") if isinstance(name, str) else ("", "", "")
            entry = self._per_step.get(var)
            if entry is not None and rest.endswith("]") and rest[:-1].lstrip("-").isdigit():
                count += int(rest[:-1]) in entry[0]
        return count

    def copy(self) -> dict:
        return dict(self)

    def __repr__(self):
        return f"<NodeMap of {len(self)} nodes>"

