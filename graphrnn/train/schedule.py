"""Schedules: a number that changes with the training step (a learning rate, or scheduled sampling's p).

A schedule is any callable ``f(step) -> float`` with step = 0, 1, 2, ...; these are
the common ones, each a small frozen dataclass so that it prints and can be stored
(``describe()``).

>>> sched = StepDecay(0.1, every=100, factor=0.5)
>>> [sched(0), sched(99), sched(100), sched(250)]
[0.1, 0.1, 0.05, 0.025]
>>> round(WarmupCosine(1.0, warmup=10, total=110)(60), 3)   # half way down the cosine
0.5
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import TrainError


@dataclass(frozen=True)
class Constant:
    """The same value at every step."""

    value: float

    def __call__(self, step: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class StepDecay:
    """``value · factor ** (step // every)``: multiplied by ``factor`` every ``every`` steps."""

    value: float
    every: int
    factor: float = 0.5

    def __call__(self, step: int) -> float:
        return float(self.value * self.factor ** (step // self.every))


@dataclass(frozen=True)
class Exponential:
    """``value · rate ** (step / every)``: a smooth decay by ``rate`` every ``every`` steps."""

    value: float
    rate: float = 0.1
    every: int = 1000

    def __call__(self, step: int) -> float:
        return float(self.value * self.rate ** (step / self.every))


@dataclass(frozen=True)
class WarmupCosine:
    """A linear warm-up from 0 over ``warmup`` steps, then a cosine down to ``floor`` at step ``total``."""

    value: float
    warmup: int
    total: int
    floor: float = 0.0

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return float(self.value * (step + 1) / self.warmup)
        span = max(1, self.total - self.warmup)
        done = min(1.0, (step - self.warmup) / span)
        return float(self.floor + (self.value - self.floor) * 0.5 * (1 + math.cos(math.pi * done)))


@dataclass(frozen=True)
class Linear:
    """From ``start`` to ``end`` in a straight line over ``steps`` steps, then ``end``."""

    start: float
    end: float
    steps: int

    def __call__(self, step: int) -> float:
        done = min(1.0, step / max(1, self.steps))
        return float(self.start + (self.end - self.start) * done)


@dataclass(frozen=True)
class InverseSigmoid:
    """Scheduled sampling's inverse-sigmoid decay (Bengio et al. 2015): the probability of feeding the
    truth is ``ε_i = k / (k + exp(i / k))``; this schedule gives the probability of feeding the model's
    own output, ``p = end · (1 − ε_i)``, which grows from about 0 towards ``end``."""

    k: float
    end: float = 1.0

    def __call__(self, step: int) -> float:
        x = step / self.k
        truth = self.k / (self.k + math.exp(x)) if x < 700 else 0.0
        return float(self.end * (1.0 - truth))


def describe(schedule) -> dict:
    """A JSON-friendly description: ``{"kind": "StepDecay", "value": 0.1, ...}`` (or the plain number)."""
    if isinstance(schedule, (int, float)):
        return {"kind": "Constant", "value": float(schedule)}
    try:
        return {"kind": type(schedule).__name__, **asdict(schedule)}
    except TypeError:
        return {"kind": type(schedule).__name__}


def as_schedule(value, what: str = "the learning rate"):
    """A number becomes a :class:`Constant`; a callable is taken as it is."""
    if callable(value):
        return value
    try:
        return Constant(float(value))
    except (TypeError, ValueError):
        raise TrainError(f"{what} must be a number or a schedule (a function of the step), not {value!r}") from None


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": Exponential, "cosine": WarmupCosine,
             "linear": Linear, "inverse_sigmoid": InverseSigmoid}
