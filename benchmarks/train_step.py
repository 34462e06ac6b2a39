"""One training step: graphrnn's Trainer vs a hand-written numpy forward + backward + Adam (issue 14).

The step is: the forward pass and BPTT of the book's standard RNN (fig10_3, as in bptt.py,
with the same problem sizes and seeded weights and data), then one Adam update of all five
parameters.  graphrnn runs it as ``Trainer.step()`` (the fast path ``rec.run(copies=False)``,
the book's summed loss, the gradient norms it records, :class:`graphrnn.train.Adam`); the
reference is bptt.py's numpy loop from eqs. 10.8-10.28 followed by Adam written out as
algorithm 8.7 states it.  Both start from the same parameters and data; after three steps
their parameters are compared, then steps are timed alternately, each implementation in its
own worker process.  The last line printed is one JSON object.

    python benchmarks/train_step.py                  # S1: T=100 H=128 B=32 I=O=64, float64
    python benchmarks/train_step.py --dtype float32
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bptt import make_problem, numpy_bptt  # noqa: E402  (the same problem and numpy BPTT as bptt.py)

LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8


def numpy_setup(params, x, y, dtype):
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v2 = {k: np.zeros_like(v) for k, v in params.items()}
    count = [0]

    def step():
        _, grads = numpy_bptt(params, x, y)
        count[0] += 1
        t = count[0]
        for k, p in params.items():  # algorithm 8.7, written out
            g = grads[k]
            m[k] = BETA1 * m[k] + (1 - BETA1) * g
            v2[k] = BETA2 * v2[k] + (1 - BETA2) * g * g
            m_hat = m[k] / (1 - BETA1 ** t)
            v_hat = v2[k] / (1 - BETA2 ** t)
            p -= (LR * m_hat / (np.sqrt(v_hat) + EPS)).astype(p.dtype)

    return step


def graphrnn_setup(params, x, y, dtype):
    import graphrnn as gr
    from graphrnn.train import Adam, Task, Trainer

    T, I, B = x.shape
    H, O = params["W"].shape[0], params["V"].shape[0]
    rec = gr.load("fig10_3", sizes={"H": H, "I": I, "K": O})
    data = {"x": x, "y": y}

    class Fixed(Task):
        name = "fixed"

        def batch(self, rng, B, dtype=np.float64):
            return data

    trainer = Trainer(rec, Fixed(), params=params, optimizer=Adam(lr=LR, beta1=BETA1, beta2=BETA2, eps=EPS),
                      batch=B, loss_scale="sum", dtype=dtype, profile_every=0, progress=False, adapt=False)
    trainer.params = params  # the same arrays: the worker reads them back for the comparison
    return trainer.step


def worker(name, conn, size, dtype):
    T, H, B, I, O = size
    params, x, y = make_problem(T, H, B, I, O, dtype)
    step = (numpy_setup if name == "numpy" else graphrnn_setup)(params, x, y, dtype)
    while True:
        msg = conn.recv()
        if msg == "stop":
            break
        if msg == "params":
            conn.send({k: v.copy() for k, v in params.items()})
            continue
        start = time.perf_counter()
        step()
        conn.send(time.perf_counter() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--O", type=int, default=64)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each timed step (default 0.3)")
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    size = (args.T, args.H, args.B, args.I, args.O)
    ctx = mp.get_context("spawn")
    workers = {}
    for name in ("numpy", "graphrnn"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, child, size, dtype))
        proc.start()
        workers[name] = (proc, parent)
    try:
        for _ in range(3):  # three steps each, then the parameters must agree
            for _, conn in workers.values():
                conn.send("step")
                conn.recv()
        got = {}
        for name, (_, conn) in workers.items():
            conn.send("params")
            got[name] = conn.recv()
        err = max(float(np.max(np.abs(got["graphrnn"][k] - got["numpy"][k])) / np.max(np.abs(got["numpy"][k])))
                  for k in got["numpy"])
        print(f"parameters after 3 Adam steps: max relative difference {err:.2e}", file=sys.stderr)
        times = {name: [] for name in workers}
        order = list(workers)
        for rep in range(args.reps):
            for name in order[rep % 2:] + order[:rep % 2]:  # each in turn goes first
                time.sleep(args.pause)
                conn = workers[name][1]
                conn.send("step")
                times[name].append(conn.recv())
    finally:
        for proc, conn in workers.values():
            conn.send("stop")
            proc.join()
    median = {n: statistics.median(ts) for n, ts in times.items()}
    ratio = median["graphrnn"] / median["numpy"]
    for n in median:
        print(f"{n:>9}: median {median[n] * 1e3:8.2f} ms", file=sys.stderr)
    print(f"ratio graphrnn / numpy: {ratio:.2f} (target <= 1.1)", file=sys.stderr)
    print(json.dumps({"size": dict(zip("THBIO", size), dtype=args.dtype), "median_s": median, "ratio": ratio,
                      "max_rel_param_diff": err}))
    tol = 1e-10 if args.dtype == "float64" else 1e-4
    return 0 if err <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
