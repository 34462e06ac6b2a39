"""The trainer: the fast path, a loss scale, clipping, an optimizer, a history, checkpoints.

One training step (:meth:`Trainer.step`) is

1. the data of the step: a fresh batch of the task, or, for a stream task with
   ``carry=True``, the next chunk of its B tracks, started from the state the previous
   chunk ended in (``rec.run(..., initial_state=...)``, ``run.final_state``);
2. one run on the fast path, ``rec.run(data, copies=False, ...)``, optionally with
   truncated BPTT ``truncate=(k1, k2)`` inside the chunk;
3. the gradient scaled by the loss scale: ``"sum"`` is the book's loss (eq. 10.13, summed
   over the steps and the sequences of the batch), ``"mean"`` divides it by the number of
   loss terms (steps with a loss × sequences), so a learning rate does not depend on T and B;
4. clipping, elementwise and/or by norm (eqs. 10.48-10.49), then the optimizer's update
   with the learning rate of the schedule.

The history records, per step, the loss (in the chosen scale), the learning rate, the
gradient's norm in all and per parameter (before clipping), and whether it was clipped;
every ``profile_every`` steps, the profile ‖∇h(t) L‖ over the steps t of the chunk (the
vanishing or exploding gradients of §10.7).  Checkpoints are ``.npz`` files holding only
numeric arrays and one JSON string, read back with ``allow_pickle=False``.

>>> import graphrnn as gr
>>> from graphrnn.train import Trainer, Copy
>>> trainer = Trainer(gr.load("fig10_3"), Copy(n=2, delay=3), batch=8, lr=0.01, progress=False)
>>> history = trainer.fit(5)
>>> len(history["loss"]), sorted(history["grad_norm_param"])
(5, ['U', 'V', 'W', 'b', 'c'])
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..recurrence import Recurrence
from .clip import clip_by_norm, clip_elementwise, grad_norms
from .errors import TrainError
from .optim import Optimizer, make_optimizer
from .schedule import as_schedule, describe
from .tasks import Task

LOSS_SCALES = ("sum", "mean")
CHECKPOINT_VERSION = 1


def state_variables(rec: Recurrence) -> list[str]:
    """The computed variables read at an earlier step (``h`` in ``W @ h[t-1]``), ``h`` first."""
    names = {u for u, v, d in rec.folded.edges(data=True)
             if d["delay"] > 0 and rec.variables[u].kind == "computed"}
    return sorted(names, key=lambda n: (n != "h", n))


def loss_terms(rec: Recurrence, T: int, B: int) -> int:
    """How many terms the book's loss sums (eq. 10.13): steps with a loss × sequences."""
    every = any(rec.equations[name].anchor == "t" for name in rec.losses)
    return (T if every else 1) * B


class Trainer:
    """Train ``rec`` (an architecture, adapted to ``task`` by :meth:`Task.adapt`) on ``task``.

    ``optimizer`` is an :class:`~graphrnn.train.optim.Optimizer` or a name (``"adam"``,
    ``"sgd"``, ``"rmsprop"``); ``lr`` a number or a schedule (``f(step) -> lr``; default: the
    optimizer's own rate, or 1e-3).
    ``clip_norm`` and ``clip_value`` clip by norm and elementwise.  ``mode`` is the
    run's mode; with ``"scheduled"``, ``p`` (a number or a schedule) is the probability
    of feeding the model's own output (scheduled sampling).  ``truncate=(k1, k2)`` is
    truncated BPTT inside each chunk.  ``carry=True`` walks a stream task's tracks in
    order and carries the state from one chunk to the next.  ``params`` default to
    ``rec.init_params(seed)``, in ``dtype`` (float32 by default).
    """

    def __init__(self, rec: Recurrence, task: Task, params: dict | None = None, *, optimizer="adam",
                 lr=None, batch: int = 16, clip_norm: float | None = None, clip_value: float | None = None,
                 loss_scale: str = "mean", mode: str = "teacher", p=0.0, truncate=None, carry: bool = False,
                 dtype=np.float32, seed: int = 0, profile_every: int = 10, progress: bool = True,
                 adapt: bool = True):
        self.task = task
        self.rec = task.adapt(rec) if adapt else rec
        if loss_scale not in LOSS_SCALES:
            raise TrainError(f"loss_scale must be 'sum' (the book's eq. 10.13) or 'mean' (per step and "
                             f"sequence), not {loss_scale!r}")
        if not isinstance(batch, (int, np.integer)) or batch < 1:
            raise TrainError(f"batch must be a whole number >= 1, not {batch!r}")
        if mode not in ("teacher", "free", "scheduled"):
            raise TrainError(f"mode must be 'teacher', 'free' or 'scheduled', not {mode!r}")
        if carry and not hasattr(task, "chunk"):
            raise TrainError(f"carry=True walks a stream in order, but the {task.name} task gives independent "
                             f"sequences; use the text task, or carry=False")
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TrainError(f"dtype must be a floating type (float32 or float64), not {self.dtype}")
        self.batch, self.loss_scale, self.mode = int(batch), loss_scale, mode
        self.truncate = tuple(truncate) if truncate else None
        self.carry = bool(carry)
        self.clip_norm, self.clip_value = clip_norm, clip_value
        if clip_norm is not None:
            clip_by_norm({}, clip_norm)  # checks the threshold now, not at the first step
        if clip_value is not None:
            clip_elementwise({}, clip_value)
        if lr is None:  # the optimizer's own rate, or 1e-3
            lr = optimizer.lr if isinstance(optimizer, Optimizer) else 1e-3
        self.lr = as_schedule(lr)
        self.p = as_schedule(p, "p (the probability of feeding the model's own output)")
        self.optimizer = optimizer if isinstance(optimizer, Optimizer) else make_optimizer(optimizer, self.lr(0))
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        if params is None:
            params = self.rec.init_params(seed=seed, dtype=self.dtype)
        shapes = self.rec.all_param_shapes()
        if set(params) != set(shapes):
            raise TrainError(f"params must hold exactly the parameters of {self.rec.name}: {', '.join(shapes)}; "
                             f"got {', '.join(params)}")
        self.params = {n: np.array(params[n], dtype=self.dtype).reshape(shapes[n]) for n in shapes}
        self.profile_every = max(0, int(profile_every))
        self.progress = progress
        states = state_variables(self.rec)
        self.profile_of = states[0] if states else None
        self.state: dict | None = None  # the carried state (carry=True)
        self.chunk = 0
        self.steps_done = 0
        self.history = {"loss": [], "lr": [], "grad_norm": [], "grad_norm_param": {n: [] for n in self.params},
                        "clipped": [], "p": [], "loss_scale": loss_scale,
                        "profile": {"variable": self.profile_of, "step": [], "norms": []}}

    def loss_terms(self, T: int) -> int:
        """How many terms the book's loss sums in a chunk of T steps: steps with a loss × sequences."""
        steps = self.task.loss_steps(T)
        return loss_terms(self.rec, T, self.batch) if steps is None else steps * self.batch

    # ------------------------------------------------------------------ one step
    def _data(self) -> dict:
        if self.carry:
            n = self.task.chunks(self.batch)
            if self.chunk % max(n, 1) == 0:
                self.state = None  # back at the start of the tracks: a fresh state
            data = self.task.chunk(self.chunk, self.batch, self.dtype)
            self.chunk += 1
            return data
        return self.task.batch(self.rng, self.batch, self.dtype)

    def _run_options(self, step: int) -> dict:
        options = {"params": self.params, "copies": False, "mode": self.mode, "dtype": self.dtype}
        if self.mode == "scheduled":
            options["p"] = min(1.0, max(0.0, self.p(step)))
            options["seed"] = int(self.rng.integers(2 ** 31))
        if self.carry and self.state is not None:
            options["initial_state"] = self.state
        return options

    def step(self) -> dict:
        """One update; returns what the history recorded for it."""
        step = self.steps_done
        data = self._data()
        options = self._run_options(step)
        try:
            run = self.rec.run(data, truncate=self.truncate, **options)
        except DataError as exc:
            hint = ("; the parameters grew too large: the gradients exploded, so clip them (clip_norm=..., --clip) "
                    "or lower the learning rate") if "non-finite" in str(exc) else ""
            raise TrainError(f"step {step + 1}: {exc}{hint}") from None
        T = run.T
        scale = 1.0 / self.loss_terms(T) if self.loss_scale == "mean" else 1.0
        # the gradients are the run's own arrays (buffers the next run reuses): scaled and clipped in place
        grads = {n: run.grads[n] for n in self.params}
        if scale != 1.0:
            for g in grads.values():
                g *= scale
        norms = grad_norms(grads)
        total = math.sqrt(sum(v * v for v in norms.values()))
        loss = run.loss * scale
        if not (math.isfinite(total) and math.isfinite(loss)):
            raise TrainError(f"step {step + 1}: the {'loss' if not math.isfinite(loss) else 'gradient'} is not "
                             f"finite (loss {loss:g}, gradient norm {total:g}); the gradients exploded: clip them "
                             f"(clip_norm=..., --clip) or lower the learning rate")
        if self.carry:
            self.state = {n: np.array(v) for n, v in run.final_state.items()}
        profile = None
        if self.profile_every and self.profile_of and step % self.profile_every == 0:
            profile = self._profile(run, data, options, scale)
        del run
        if self.clip_value is not None:
            clip_elementwise(grads, self.clip_value)
        clipped = False
        if self.clip_norm is not None:
            _, clipped = clip_by_norm(grads, self.clip_norm, total)
        lr = self.lr(step)
        self.optimizer.lr = lr
        self.optimizer.step(self.params, grads)
        with np.errstate(over="ignore", invalid="ignore"):
            bad = [n for n, v in self.params.items() if not np.isfinite(v).all()]
        if bad:
            raise TrainError(f"step {step + 1}: the update made {', '.join(bad)} not finite (the learning rate "
                             f"{lr:g} times a gradient of norm {total:g} overflowed {self.dtype.name}); the "
                             f"gradients exploded: clip them (clip_norm=..., --clip) or lower the learning rate")
        self.steps_done += 1
        h = self.history
        h["loss"].append(float(loss))
        h["lr"].append(float(lr))
        h["grad_norm"].append(float(total))
        for n, v in norms.items():
            h["grad_norm_param"][n].append(float(v))
        h["clipped"].append(bool(clipped))
        h["p"].append(float(options.get("p", 0.0)))
        if profile is not None:
            h["profile"]["step"].append(step)
            h["profile"]["norms"].append(profile)
        return {"loss": loss, "grad_norm": total, "clipped": clipped, "lr": lr}

    def _profile(self, run, data, options, scale) -> list[float]:
        """‖∇h(t) L‖ for t = 1..T (Frobenius norm over the state's rows and the batch), in the loss scale.
        A truncated run keeps no per-step gradients: the profile then comes from one full run on the
        same data (the gradient the truncation approximates)."""
        if self.truncate:
            options = {k: v for k, v in options.items()}
            run = self.rec.run(data, **options)
        name = self.profile_of
        return [float(np.linalg.norm(run.grads[f"{name}[{t}]"]) * scale) for t in range(1, run.T + 1)]

    def fit(self, steps: int, checkpoint=None, checkpoint_every: int | None = None, callback=None) -> dict:
        """Run ``steps`` more updates with a tqdm progress bar; returns the history.

        ``checkpoint`` (a path) is written every ``checkpoint_every`` steps and at the end.
        ``callback(trainer, record)`` is called after every step."""
        from tqdm.auto import tqdm

        if not isinstance(steps, (int, np.integer)) or steps < 0:
            raise TrainError(f"steps must be a whole number >= 0, not {steps!r}")
        bar = tqdm(total=int(steps), disable=not self.progress, desc=f"train {self.rec.name}", leave=False,
                   dynamic_ncols=True)
        try:
            for _ in range(int(steps)):
                record = self.step()
                bar.update(1)
                if self.steps_done % 10 == 0 or self.steps_done == 1:
                    bar.set_postfix(loss=f"{record['loss']:.4g}", grad=f"{record['grad_norm']:.3g}")
                if callback is not None:
                    callback(self, record)
                if checkpoint is not None and checkpoint_every and self.steps_done % checkpoint_every == 0:
                    self.save(checkpoint)
        finally:
            bar.close()
        if checkpoint is not None:
            self.save(checkpoint)
        return self.history

    # ------------------------------------------------------------------ checkpoints
    def config(self) -> dict:
        return {"task": self.task.describe(), "optimizer": {"kind": type(self.optimizer).__name__,
                                                             **self.optimizer.config()},
                "lr": describe(self.lr), "p": describe(self.p), "batch": self.batch, "mode": self.mode,
                "loss_scale": self.loss_scale, "truncate": self.truncate, "carry": self.carry,
                "clip_norm": self.clip_norm, "clip_value": self.clip_value, "dtype": self.dtype.name,
                "seed": self.seed}

    def save(self, path) -> Path:
        """Write a checkpoint (``.npz``): parameters, optimizer state, carried state, step, random
        generator, history and settings.  Written to a temporary file first, then renamed, so an
        interrupted save leaves the previous checkpoint whole."""
        path = Path(path)
        meta = {"version": CHECKPOINT_VERSION, "steps": self.steps_done, "chunk": self.chunk,
                "rng": self.rng.bit_generator.state, "spec": self.rec.text, "config": self.config(),
                "history": self.history}
        arrays = {f"param/{n}": p for n, p in self.params.items()}
        arrays.update({f"opt/{k}": v for k, v in self.optimizer.state().items()})
        arrays.update({f"state/{k}": v for k, v in (self.state or {}).items()})
        arrays["meta"] = np.array(json.dumps(meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        return path

    def load(self, path) -> "Trainer":
        """Resume from a checkpoint written by :meth:`save` for the same recurrence and optimizer:
        the next step is the one the saved run would have taken next."""
        try:
            with np.load(path, allow_pickle=False) as f:
                files = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise TrainError(f"cannot read checkpoint {str(path)!r}: {exc}") from None
        if "meta" not in files:
            raise TrainError(f"{str(path)!r} is not a graphrnn checkpoint (it has no 'meta' entry)")
        meta = json.loads(str(files["meta"]))
        if meta.get("version") != CHECKPOINT_VERSION:
            raise TrainError(f"checkpoint {str(path)!r} has version {meta.get('version')}, this graphrnn reads "
                             f"version {CHECKPOINT_VERSION}")
        if meta["spec"] != self.rec.text:
            raise TrainError(f"checkpoint {str(path)!r} was written for another recurrence (its spec differs "
                             f"from {self.rec.name}'s); resume with the same architecture, sizes and task")
        kind = meta["config"]["optimizer"]["kind"]
        if kind != type(self.optimizer).__name__:
            raise TrainError(f"checkpoint {str(path)!r} was written with the {kind} optimizer, not "
                             f"{type(self.optimizer).__name__}")
        params = {k.partition("/")[2]: v for k, v in files.items() if k.startswith("param/")}
        if set(params) != set(self.params):
            raise TrainError(f"checkpoint {str(path)!r} holds parameters {', '.join(params)}, not "
                             f"{', '.join(self.params)}")
        self.params = {n: params[n].astype(self.dtype) for n in self.params}
        self.optimizer.load_state({k.partition("/")[2]: v for k, v in files.items() if k.startswith("opt/")})
        state = {k.partition("/")[2]: v for k, v in files.items() if k.startswith("state/")}
        self.state = state or None
        self.steps_done, self.chunk = int(meta["steps"]), int(meta["chunk"])
        self.rng.bit_generator.state = meta["rng"]
        self.history = meta["history"]
        return self


def load_params(path) -> dict[str, np.ndarray]:
    """The parameters of a ``params.npz`` (or of a checkpoint), read with ``allow_pickle=False``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k.partition("/")[2] if k.startswith("param/") else k: f[k] for k in f.files
                   if k != "meta" and not k.startswith(("opt/", "state/"))}
    except (OSError, ValueError) as exc:
        raise TrainError(f"cannot read parameters from {str(path)!r}: {exc}") from None
    return out
