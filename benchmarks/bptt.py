"""BPTT speed: graphrnn vs a hand-written numpy loop vs PyTorch's eager loop (issue 6).

The book's standard RNN (fig10_3: a = b + W h + U x, h = tanh a, o = c + V h,
softmax cross-entropy on class targets, loss summed over t and batch), forward
and backward of all five parameters, with the same seeded float64 weights and
data for every implementation:

1. graphrnn through its public API (spec -> run -> backward);
2. a numpy time loop written from the book's equations (the reference);
3. "numpy hoisted": the same loop with everything that does not depend on the
   recurrence done for all steps at once (the input projections b + U x, the output
   layer, the softmax and their gradients, and ∇W, ∇U as one product each);
4. PyTorch's eager loop over t, when torch is importable.

Each implementation lives in its own worker process (their thread pools would
disturb each other in one), and the workers are timed alternately, each in turn
going first, so a swing in the machine's speed hits all of them alike.  The gradients are compared first,
on each implementation's first run, whose time (graphrnn's includes compiling its program) is printed on its
own line.  The last line printed is one JSON object with the medians and the ratios to numpy.

    python benchmarks/bptt.py --T 100 --H 128 --B 32 --I 64 --O 64
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time

import numpy as np


def make_problem(T, H, B, I, O, dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = {
        "b": rng.standard_normal((H, 1)) * 0.1, "W": rng.standard_normal((H, H)) / np.sqrt(H),
        "U": rng.standard_normal((H, I)) / np.sqrt(I), "c": rng.standard_normal((O, 1)) * 0.1,
        "V": rng.standard_normal((O, H)) / np.sqrt(H),
    }
    params = {k: v.astype(dtype) for k, v in params.items()}
    x = rng.standard_normal((T, I, B)).astype(dtype)
    y = rng.integers(0, O, size=(T, B))
    return params, x, y


# ------------------------------------------------------------------ the implementations


def numpy_bptt(params, x, y):
    """Forward and backward of fig10_3, eqs. 10.8-10.28, one step at a time."""
    b, W, U, c, V = (params[k] for k in "bWUcV")
    T, _, B = x.shape
    H = W.shape[0]
    hs = [np.zeros((H, B), dtype=x.dtype)]
    ps = []
    loss = 0.0
    cols = np.arange(B)
    for t in range(T):
        h = np.tanh(b + W @ hs[-1] + U @ x[t])
        o = c + V @ h
        o = o - o.max(axis=0, keepdims=True)
        e = np.exp(o)
        s = e.sum(axis=0, keepdims=True)
        loss -= float(np.sum(o[y[t], cols] - np.log(s[0])))
        hs.append(h)
        ps.append(e / s)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros((H, B), dtype=x.dtype)
    for t in reversed(range(T)):
        do = ps[t]
        do[y[t], cols] -= 1.0  # eq. 10.18
        h = hs[t + 1]
        grads["V"] += do @ h.T  # eq. 10.24
        grads["c"] += do.sum(axis=1, keepdims=True)  # eq. 10.22
        dh = V.T @ do + dh_next  # eqs. 10.19 and 10.21
        da = (1.0 - h * h) * dh
        grads["b"] += da.sum(axis=1, keepdims=True)  # eq. 10.23
        grads["W"] += da @ hs[t].T  # eq. 10.26
        grads["U"] += da @ x[t].T  # eq. 10.28
        dh_next = W.T @ da
    return loss, grads


def numpy_hoisted_bptt(params, x, y):
    """fig10_3 again, with only the recurrence itself in the loop (eqs. 10.8-10.28 by blocks of steps)."""
    b, W, U, c, V = (params[k] for k in "bWUcV")
    T, I, B = x.shape
    H = W.shape[0]
    X = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(I, T * B)  # step t is columns t*B..(t+1)*B
    A = U @ X
    A += b  # b + U x[t] for every t
    Hs = np.zeros((H, (T + 1) * B), dtype=x.dtype)  # h[0], h[1], ..., h[T]
    for t in range(T):
        a = A[:, t * B:(t + 1) * B]
        a += W @ Hs[:, t * B:(t + 1) * B]
        np.tanh(a, out=Hs[:, (t + 1) * B:(t + 2) * B])
    Ht = Hs[:, B:]
    O = V @ Ht
    O += c
    O -= O.max(axis=0, keepdims=True)
    E = np.exp(O)
    S = E.sum(axis=0)
    cols = np.arange(T * B)
    labels = y.reshape(-1)
    loss = -float(np.sum(O[labels, cols] - np.log(S)))
    dO = E
    dO /= S
    dO[labels, cols] -= 1.0  # eq. 10.18, every step at once
    grads = {"V": dO @ Ht.T, "c": dO.sum(axis=1, keepdims=True)}
    dH = V.T @ dO  # eq. 10.21's output term, every step at once
    dA = A  # reused: the pre-activations are not needed any more
    dh_next = np.zeros((H, B), dtype=x.dtype)
    for t in reversed(range(T)):
        h = Hs[:, (t + 1) * B:(t + 2) * B]
        dh = dH[:, t * B:(t + 1) * B]
        dh += dh_next
        da = dA[:, t * B:(t + 1) * B]
        np.multiply(1.0 - h * h, dh, out=da)
        dh_next = W.T @ da
    grads["b"] = dA.sum(axis=1, keepdims=True)
    grads["W"] = dA @ Hs[:, :T * B].T  # eq. 10.26 summed over t as one product
    grads["U"] = dA @ X.T
    return loss, grads


def graphrnn_setup(params, x, y, T, H, I, O, dtype):
    import graphrnn as gr

    rec = gr.load("fig10_3", sizes={"H": H, "I": I, "K": O})
    inputs = {"x": x, "y": y}

    def step():
        run = rec.run(inputs, params=params, T=T, dtype=dtype, copies=False)
        return run.loss, {k: run.grads[k] for k in params}

    return step


def torch_setup(params, x, y, T, H, I, O, dtype):
    import torch

    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    tp = {k: torch.tensor(v, dtype=tdtype, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(x, dtype=tdtype)
    ty = torch.tensor(y, dtype=torch.long)

    def step():
        for v in tp.values():
            v.grad = None
        h = torch.zeros((H, x.shape[2]), dtype=tdtype)
        loss = 0
        for t in range(T):
            h = torch.tanh(tp["b"] + tp["W"] @ h + tp["U"] @ tx[t])
            o = tp["c"] + tp["V"] @ h
            loss = loss + torch.nn.functional.cross_entropy(o.T, ty[t], reduction="sum")
        loss.backward()
        return float(loss.detach()), {k: v.grad.numpy() for k, v in tp.items()}

    return step


IMPLS = {"numpy": None, "numpy hoisted": None, "graphrnn": graphrnn_setup, "torch": torch_setup}


def worker(name, conn, problem_args, dtype):
    T, H, B, I, O = problem_args
    params, x, y = make_problem(T, H, B, I, O, dtype)
    if name in ("numpy", "numpy hoisted"):
        loop = numpy_bptt if name == "numpy" else numpy_hoisted_bptt

        def step():
            return loop(params, x, y)
    else:
        step = IMPLS[name](params, x, y, T, H, I, O, dtype)
    while True:
        msg = conn.recv()
        if msg == "stop":
            break
        if msg == "grads":  # the first run: its time includes whatever is done once (compiling)
            start = time.perf_counter()
            loss, grads = step()
            conn.send((loss, grads, time.perf_counter() - start))
            continue
        start = time.perf_counter()
        step()
        conn.send(time.perf_counter() - start)


def rel_err(a, b):
    """Per-entry error measured against the largest entry of the reference."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--H", type=int, default=128)
    ap.add_argument("--B", type=int, default=32)
    ap.add_argument("--I", type=int, default=64)
    ap.add_argument("--O", type=int, default=64)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each timed run (default 0.3)")
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    names = ["numpy", "numpy hoisted", "graphrnn"]
    try:
        import torch  # noqa: F401

        names.append("torch")
    except ImportError:
        print("torch is not importable: skipping PyTorch", file=sys.stderr)
    ctx = mp.get_context("spawn")
    workers = {}
    for name in names:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, child, (args.T, args.H, args.B, args.I, args.O), dtype))
        proc.start()
        workers[name] = (proc, parent)
    try:
        results = {}
        for name, (_, conn) in workers.items():
            conn.send("grads")
            results[name] = conn.recv()
        ref_loss, ref_grads, _ = results["numpy"]
        max_err = 0.0
        first = {name: elapsed for name, (_, _, elapsed) in results.items()}
        print("first run (graphrnn compiles its program): "
              + ", ".join(f"{n} {t * 1e3:.1f} ms" for n, t in first.items()), file=sys.stderr)
        for name, (loss, grads, _) in results.items():
            errs = {k: rel_err(grads[k], ref_grads[k]) for k in ref_grads}
            err = max(errs.values())
            print(f"{name:>13}: loss {loss:.12g}, max relative gradient error vs numpy {err:.2e}", file=sys.stderr)
            if name == "graphrnn":
                max_err = err
        times = {name: [] for name in workers}
        order = list(workers)
        for rep in range(args.reps):
            # each implementation in turn comes first: whoever runs right after another one finds the
            # shared caches full of its data (measured: up to 8% slower), so no one always pays that
            for name in order[rep % len(order):] + order[:rep % len(order)]:
                conn = workers[name][1]
                # let the previous worker's BLAS threads stop spinning (OpenBLAS busy-waits for a
                # while after a product), so that they do not steal this worker's cores
                time.sleep(args.pause)
                conn.send("time")
                times[name].append(conn.recv())
    finally:
        for proc, conn in workers.values():
            conn.send("stop")
            proc.join()
    median = {n: statistics.median(ts) for n, ts in times.items()}
    ratios = {n: median[n] / median["numpy"] for n in median if n != "numpy"}
    for n in median:
        print(f"{n:>13}: median {median[n] * 1e3:9.2f} ms" + (f"  ratio {ratios[n]:.2f}" if n in ratios else ""),
              file=sys.stderr)
    ratios.setdefault("torch", None)
    out = {"size": {"T": args.T, "H": args.H, "B": args.B, "I": args.I, "O": args.O, "dtype": args.dtype},
           "median_s": median, "ratios": ratios, "max_rel_grad_err": max_err, "first_run_s": first}
    print(json.dumps(out))
    tol = 1e-10 if args.dtype == "float64" else 1e-4
    return 0 if max_err <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
