"""Per-op overhead of the autodiff engine against the same numpy calls written by hand.

The workload is a tanh recurrence on small arrays, where Python overhead dominates::

    h <- tanh(W @ h + b) * m        (4 ops a step: matmul, add, tanh, mul)

unrolled for ``--steps`` steps (400 ops by default) and closed by a sum.  Four
variants are timed, interleaved in the same loop so that machine speed swings
hit all of them alike, and the median of ``--repeats`` rounds is reported:

* engine forward            (graph recorded, as in training)
* numpy forward             (the same calls, keeping what backward needs)
* engine forward+backward   (``loss.backward()``)
* numpy forward+backward    (the backward written out by hand)

It prints µs per op for each, the engine/numpy ratios and, last, one JSON line.
The goal is a forward+backward ratio of at most 2.5.

    python benchmarks/engine_overhead.py [--steps 100] [--size 8] [--repeats 31]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time

import numpy as np

import graphrnn as gr

OPS_PER_STEP = 4


def make_params(n: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)) / np.sqrt(n)
    b = rng.standard_normal((n, 1)) * 0.1
    m = 1.0 + 0.1 * rng.standard_normal((n, batch))
    h0 = rng.standard_normal((n, batch))
    return W, b, m, h0


# ----------------------------------------------------------------------------- engine


def engine_forward(W, b, m, h0, steps):
    h = h0
    for _ in range(steps):
        h = gr.tanh(W @ h + b) * m
    return h.sum()


def engine_forward_backward(arrays, steps):
    W, b, m, h0 = (gr.Tensor(a, requires_grad=True) for a in arrays)
    engine_forward(W, b, m, h0, steps).backward()
    return W.grad, b.grad, m.grad, h0.grad


def engine_forward_only(arrays, steps):
    W, b, m, h0 = (gr.Tensor(a, requires_grad=True) for a in arrays)
    return engine_forward(W, b, m, h0, steps)


# ----------------------------------------------------------------------------- numpy by hand


def numpy_forward(W, b, m, h0, steps):
    """The same calls; keeps the inputs and tanh outputs of each step for backward."""
    hs, ths = [], []
    h = h0
    for _ in range(steps):
        hs.append(h)
        th = np.tanh(W @ h + b)
        ths.append(th)
        h = th * m
    return np.sum(h), hs, ths


def numpy_forward_backward(arrays, steps):
    W, b, m, h0 = arrays
    _, hs, ths = numpy_forward(W, b, m, h0, steps)
    gW, gb, gm = np.zeros_like(W), np.zeros_like(b), np.zeros_like(m)
    g = np.ones_like(h0)  # d sum / d h_T
    for h, th in zip(reversed(hs), reversed(ths)):
        gm = gm + g * th  # mul
        gz = (g * m) * (1.0 - th * th)  # mul, tanh
        gb = gb + gz.sum(axis=1, keepdims=True)  # add (b broadcast over the batch)
        gW = gW + gz @ h.T  # matmul
        g = W.T @ gz
    return gW, gb, gm, g


# ----------------------------------------------------------------------------- timing


def _time(fn, *args) -> float:
    t0 = time.perf_counter_ns()
    fn(*args)
    return (time.perf_counter_ns() - t0) / 1e3  # µs


def check_same_gradients(arrays, steps) -> float:
    """The two implementations compute the same thing (or the comparison means nothing)."""
    worst = 0.0
    for e, n in zip(engine_forward_backward(arrays, steps), numpy_forward_backward(arrays, steps)):
        worst = max(worst, float(np.max(np.abs(e - n) / (1.0 + np.abs(n)))))
    if worst > 1e-10:
        raise SystemExit(f"engine and hand-written numpy gradients differ (max rel. error {worst:.3g})")
    return worst


def run(steps: int, size: int, batch: int, repeats: int) -> dict:
    arrays = make_params(size, batch)
    check_same_gradients(arrays, steps)
    variants = {
        "engine_fwd": lambda: engine_forward_only(arrays, steps),
        "numpy_fwd": lambda: numpy_forward(*arrays, steps),
        "engine_fwd_bwd": lambda: engine_forward_backward(arrays, steps),
        "numpy_fwd_bwd": lambda: numpy_forward_backward(arrays, steps),
    }
    for fn in variants.values():  # warm up
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    for r in range(repeats):
        gc.collect()
        # rotate the order each round so no variant always runs right after another
        for k in order[r % len(order):] + order[: r % len(order)]:
            times[k].append(_time(variants[k]))
    n_ops = steps * OPS_PER_STEP + 1  # + the final sum
    per_op = {k: statistics.median(v) / n_ops for k, v in times.items()}
    return {
        "benchmark": "engine_overhead",
        "workload": f"h = tanh(W @ h + b) * m, W {size}x{size}, h ({size},{batch}), b ({size},1)",
        "ops": n_ops,
        "repeats": repeats,
        "us_per_op": {k: round(v, 3) for k, v in per_op.items()},
        "ratio_fwd": round(per_op["engine_fwd"] / per_op["numpy_fwd"], 3),
        "ratio_fwd_bwd": round(per_op["engine_fwd_bwd"] / per_op["numpy_fwd_bwd"], 3),
        "goal_fwd_bwd": 2.5,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="recurrence steps (4 ops each)")
    parser.add_argument("--size", type=int, default=8, help="hidden size n (W is n x n)")
    parser.add_argument("--batch", type=int, default=8, help="columns of h")
    parser.add_argument("--repeats", type=int, default=41, help="interleaved rounds; medians reported")
    args = parser.parse_args(argv)
    res = run(args.steps, args.size, args.batch, args.repeats)
    print(f"workload: {res['workload']}, {res['ops']} ops, median of {res['repeats']} interleaved rounds")
    print(f"{'':>16} {'engine':>10} {'numpy':>10} {'ratio':>7}")
    u = res["us_per_op"]
    print(f"{'forward':>16} {u['engine_fwd']:>7.2f} µs {u['numpy_fwd']:>7.2f} µs {res['ratio_fwd']:>6.2f}x")
    print(f"{'fwd+backward':>16} {u['engine_fwd_bwd']:>7.2f} µs {u['numpy_fwd_bwd']:>7.2f} µs "
          f"{res['ratio_fwd_bwd']:>6.2f}x  (goal <= {res['goal_fwd_bwd']}x)")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
