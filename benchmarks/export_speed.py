"""Speed of the exported code: fig10_3 exported to PyTorch and JAX against graphrnn and the numpy loop (issue 15).

The same problem as ``bptt.py`` (its ``make_problem``, its numpy loop from eqs. 10.8-10.28, its graphrnn and
hand-written PyTorch runners are imported from it, not copied): forward and backward of the book's standard
RNN, all five parameters, float64, seeded weights and data.  Implementations:

1. ``numpy``: the hand-written loop (the reference of the ratios);
2. ``graphrnn``: its public API with ``copies=False`` (the compiled fast path);
3. ``torch``: bptt.py's hand-written PyTorch eager loop;
4. ``torch export``: the module ``graphrnn export --to torch`` writes, eager;
5. ``torch export compiled``: the same module under ``torch.compile`` (needs a C compiler; ``--no-compile``
   leaves it out: TorchDynamo unrolls the loop over t, so compiling takes minutes at T = 100);
6. ``jax export``: the function ``graphrnn export --to jax`` writes, ``jax.jit(jax.value_and_grad(loss_fn))``.

As in bptt.py, each runs in its own worker process, the gradients are compared first, and the workers are
timed alternately, each in turn going first; the compile time of (5) and (6) is excluded (a warm-up run).
The last line printed is one JSON object with the medians and the ratios to numpy.

    python benchmarks/export_speed.py --T 100 --H 128 --B 32 --I 64 --O 64
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bptt import graphrnn_setup, make_problem, numpy_bptt, rel_err, torch_setup  # noqa: E402


def _exported(target: str, H: int, I: int, O: int):
    """The exported module of fig10_3 at these sizes (run from its source, as `import model` would)."""
    import graphrnn as gr

    rec = gr.load("fig10_3", sizes={"H": H, "I": I, "K": O})
    source = gr.export.to_torch(rec) if target == "torch" else gr.export.to_jax(rec)
    module = types.ModuleType(f"exported_{target}")
    exec(compile(source, f"<exported {target}>", "exec"), module.__dict__)  # noqa: S102 - our generated code
    return module


def torch_export_setup(params, x, y, T, H, I, O, dtype, compiled=False):
    import torch

    model = _exported("torch", H, I, O).make_model(params)
    inputs = {"x": torch.as_tensor(x), "y": torch.as_tensor(y)}
    run = torch.compile(model) if compiled else model

    def step():
        for p in model.parameters():
            p.grad = None
        loss = run(inputs, T=T)
        loss.backward()
        return float(loss.detach()), {n: p.grad.numpy() for n, p in model.named_parameters()}

    return step


def torch_export_compiled_setup(*args):
    return torch_export_setup(*args, compiled=True)


def jax_export_setup(params, x, y, T, H, I, O, dtype):
    import jax

    jax.config.update("jax_enable_x64", dtype == np.float64)
    loss_fn = _exported("jax", H, I, O).loss_fn
    f = jax.jit(jax.value_and_grad(loss_fn))
    inputs = {"x": jax.numpy.asarray(x), "y": jax.numpy.asarray(y)}
    jparams = {k: jax.numpy.asarray(v) for k, v in params.items()}

    def step():
        loss, grads = f(jparams, inputs)
        jax.block_until_ready(grads)
        return float(loss), {k: np.asarray(v) for k, v in grads.items()}

    return step


IMPLS = {"numpy": None, "graphrnn": graphrnn_setup, "torch": torch_setup, "torch export": torch_export_setup,
         "torch export compiled": torch_export_compiled_setup, "jax export": jax_export_setup}


def worker(name, conn, problem_args, dtype):
    T, H, B, I, O = problem_args
    params, x, y = make_problem(T, H, B, I, O, dtype)
    try:
        if name == "numpy":
            def step():
                return numpy_bptt(params, x, y)
        else:
            step = IMPLS[name](params, x, y, T, H, I, O, dtype)
        start = time.perf_counter()
        step()  # the warm-up: compiles (torch.compile, jax.jit) and fills the caches
        conn.send(("ready", time.perf_counter() - start))
    except Exception as exc:  # noqa: BLE001 - reported, and this implementation left out
        conn.send(("failed", f"{type(exc).__name__}: {str(exc)[:500]}"))
        return
    while True:
        msg = conn.recv()
        if msg == "stop":
            break
        if msg == "grads":
            conn.send(step())
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
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds of rest before each timed run (default 0.3)")
    ap.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = ap.parse_args(argv)
    dtype = np.float64
    names = [n for n in IMPLS if not (args.no_compile and n == "torch export compiled")]
    ctx = mp.get_context("spawn")
    workers, setup = {}, {}
    for name in names:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, child, (args.T, args.H, args.B, args.I, args.O), dtype))
        proc.start()
        status, detail = parent.recv()  # one at a time: a compile does not share the cores with another
        if status == "failed":
            print(f"{name:>22}: FAILED to set up: {detail}", file=sys.stderr)
            proc.join()
            setup[name] = detail
            continue
        setup[name] = detail
        print(f"{name:>22}: ready (first run, with any compiling: {detail:.1f} s)", file=sys.stderr)
        workers[name] = (proc, parent)
    try:
        results = {}
        for name, (_, conn) in workers.items():
            conn.send("grads")
            results[name] = conn.recv()
        ref_loss, ref_grads = results["numpy"]
        errors = {}
        for name, (loss, grads) in results.items():
            errors[name] = max(rel_err(grads[k], ref_grads[k]) for k in ref_grads)
            print(f"{name:>22}: loss {loss:.12g}, max relative gradient error vs numpy {errors[name]:.2e}",
                  file=sys.stderr)
        times = {name: [] for name in workers}
        order = list(workers)
        for rep in range(args.reps):
            for name in order[rep % len(order):] + order[:rep % len(order)]:
                conn = workers[name][1]
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
        print(f"{n:>22}: median {median[n] * 1e3:9.2f} ms" + (f"  ratio {ratios[n]:.2f}" if n in ratios else ""),
              file=sys.stderr)
    out = {"size": {"T": args.T, "H": args.H, "B": args.B, "I": args.I, "O": args.O, "dtype": "float64"},
           "median_s": median, "ratios": ratios, "max_rel_grad_err": errors,
           "first_run_s": {n: v for n, v in setup.items() if isinstance(v, float)},
           "failed": {n: v for n, v in setup.items() if isinstance(v, str)}}
    print(json.dumps(out))
    return 0 if all(e <= 1e-10 for e in errors.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
