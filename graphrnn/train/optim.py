"""Optimizers over a dict of numpy parameters: SGD with momentum, Adam, RMSProp.

An optimizer updates the arrays of ``params`` in place from a dict of gradients with
the same keys and shapes, in the parameters' own dtype (float32 stays float32).  The
update rules are the ones PyTorch's ``torch.optim`` implements (the tests compare
step by step):

* **SGD with momentum** (Goodfellow et al. algorithm 8.2, in PyTorch's form):
  ``v ← μ v + g``, ``θ ← θ − ε v``; with a constant ε this is the book's
  ``v ← α v − ε g``, ``θ ← θ + v``.
* **RMSProp** (algorithm 8.5): ``r ← ρ r + (1 − ρ) g²``, ``θ ← θ − ε g / (√r + δ)``
  (δ outside the square root, as PyTorch and Keras put it).
* **Adam** (algorithm 8.7; Kingma and Ba 2015): ``m ← β₁ m + (1 − β₁) g``,
  ``v ← β₂ v + (1 − β₂) g²``, ``θ ← θ − ε m̂ / (√v̂ + δ)`` with the bias-corrected
  ``m̂ = m / (1 − β₁ᵗ)``, ``v̂ = v / (1 − β₂ᵗ)``.

``state()`` and ``load_state()`` give and take the optimizer's arrays and counters as
a flat dict of numpy arrays, so a checkpoint stores them in an ``.npz`` file.

>>> import numpy as np
>>> params = {"w": np.array([1.0, -2.0])}
>>> opt = SGD(lr=0.1)
>>> opt.step(params, {"w": np.array([1.0, 1.0])})
>>> params["w"]
array([ 0.9, -2.1])
"""

from __future__ import annotations

import numpy as np

from .errors import TrainError


def _positive(name: str, value, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TrainError(f"{name} must be a number, not {value!r}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise TrainError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, not {value}")
    return value


def _fraction(name: str, value) -> float:
    value = _positive(name, value, allow_zero=True)
    if value >= 1:
        raise TrainError(f"{name} must lie in [0, 1), not {value}")
    return value


class Optimizer:
    """Base class: ``step(params, grads)`` updates ``params`` in place; ``lr`` may be changed between steps."""

    #: the names of the per-parameter arrays this optimizer keeps
    slots: tuple[str, ...] = ()

    def __init__(self, lr: float):
        self.lr = _positive("the learning rate lr", lr)
        self.t = 0  # updates done so far
        self.buffers: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}

    def _check(self, params: dict, grads: dict) -> None:
        for name, p in params.items():
            g = grads.get(name)
            if g is None:
                raise TrainError(f"no gradient for parameter {name!r}; the gradients have: {', '.join(grads)}")
            if g.shape != p.shape:
                raise TrainError(f"the gradient of {name!r} has shape {g.shape}, the parameter {p.shape}")

    def _slot(self, slot: str, name: str, like: np.ndarray) -> np.ndarray:
        buf = self.buffers[slot].get(name)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self.buffers[slot][name] = np.zeros_like(like)
        return buf

    def step(self, params: dict, grads: dict) -> None:
        """Update every array of ``params`` in place from ``grads`` (same keys and shapes)."""
        self._check(params, grads)
        self.t += 1
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _update(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def config(self) -> dict:
        """The hyper-parameters, as JSON-friendly numbers (the kind is ``type(self).__name__``)."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """The optimizer's arrays and step counter as a flat dict of arrays (``"m/W"``, ``"t"``)."""
        out = {"t": np.array(self.t, dtype=np.int64)}
        for slot, arrays in self.buffers.items():
            for name, arr in arrays.items():
                out[f"{slot}/{name}"] = arr
        return out

    def load_state(self, state: dict) -> None:
        """Take back what :meth:`state` gave (from a checkpoint)."""
        if "t" not in state:
            raise TrainError("the optimizer state has no step counter 't'; is this a graphrnn checkpoint?")
        self.t = int(state["t"])
        self.buffers = {slot: {} for slot in self.slots}
        for key, arr in state.items():
            slot, _, name = key.partition("/")
            if key == "t":
                continue
            if slot not in self.buffers or not name:
                raise TrainError(f"the optimizer state holds {key!r}, which {type(self).__name__} does not keep")
            self.buffers[slot][name] = np.array(arr)

    def __repr__(self):
        args = ", ".join(f"{k}={v:g}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum ``momentum`` (0: plain SGD).

    >>> import numpy as np
    >>> p = {"w": np.zeros(1)}
    >>> opt = SGD(lr=1.0, momentum=0.5)
    >>> for _ in range(2): opt.step(p, {"w": np.ones(1)})
    >>> p["w"]  # -1, then -(0.5 * 1 + 1)
    array([-2.5])
    """

    slots = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(lr)
        self.momentum = _fraction("momentum", momentum)

    def _update(self, name, p, g):
        if self.momentum == 0:
            p -= self.lr * g
            return
        v = self._slot("v", name, p)
        v *= self.momentum
        v += g
        p -= self.lr * v

    def config(self):
        return {"lr": self.lr, "momentum": self.momentum}


class RMSProp(Optimizer):
    """RMSProp (algorithm 8.5): each entry's step divided by a running root mean square of its gradient."""

    slots = ("r",)

    def __init__(self, lr: float = 0.001, rho: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        self.rho = _fraction("rho", rho)
        self.eps = _positive("eps", eps)

    def _update(self, name, p, g):
        r = self._slot("r", name, p)
        r *= self.rho
        r += (1 - self.rho) * (g * g)
        p -= self.lr * g / (np.sqrt(r) + self.eps)

    def config(self):
        return {"lr": self.lr, "rho": self.rho, "eps": self.eps}


class Adam(Optimizer):
    """Adam (algorithm 8.7): bias-corrected running means of the gradient and of its square.

    >>> import numpy as np
    >>> p = {"w": np.zeros(2)}
    >>> Adam(lr=0.1).step(p, {"w": np.array([3.0, -0.01])})
    >>> np.round(p["w"], 6)  # the first step moves every entry by about lr, whatever its size
    array([-0.1,  0.1])
    """

    slots = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)
        self._tmp: dict[str, np.ndarray] = {}

    def step(self, params, grads):
        self._check(params, grads)
        self.t += 1
        # the bias corrections, folded into one step size and one scale of √v (eq. of algorithm 8.7)
        self._c1 = self.lr / (1 - self.beta1 ** self.t)
        self._c2 = 1.0 / np.sqrt(1 - self.beta2 ** self.t)
        for name, p in params.items():
            self._update(name, p, grads[name])

    def _update(self, name, p, g):
        m = self._slot("m", name, p)
        v = self._slot("v", name, p)
        tmp = self._tmp.get(name)
        if tmp is None or tmp.shape != p.shape or tmp.dtype != p.dtype:
            tmp = self._tmp[name] = np.empty_like(p)
        b1, b2 = self.beta1, self.beta2
        # m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²   (in place: no temporaries of the parameter's size)
        m *= b1
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # θ ← θ − ε m̂ / (√v̂ + δ), with m̂ = m / (1 − β₁ᵗ) and √v̂ = √v / √(1 − β₂ᵗ)
        np.sqrt(v, out=tmp)
        tmp *= self._c2
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self._c1
        p -= tmp

    def config(self):
        return {"lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSProp}


def make_optimizer(kind: str, lr: float, **options) -> Optimizer:
    """An optimizer by name: ``"sgd"`` (``momentum=``), ``"adam"`` or ``"rmsprop"``."""
    cls = OPTIMIZERS.get(str(kind).lower())
    if cls is None:
        raise TrainError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
    return cls(lr=lr, **options)
