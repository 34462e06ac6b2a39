"""Long sequences: time and peak memory of BPTT, plain and checkpointed (issue 6).

For the book's standard RNN (fig10_3) with H = 16 (I = K = 8, batch 1), each
configuration runs in a fresh worker process: first under ``tracemalloc``, for
the peak of the memory Python and numpy allocated during the run (the
interpreter's own baseline is not counted; the buffers a compiled program keeps
for later runs are), then timed.  Prints a table and, last,
one JSON object.

    python benchmarks/memory.py                 # T = 1,000 / 10,000 / 100,000, and checkpointing at 10,000
    python benchmarks/memory.py --T 1000 10000  # other lengths
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import tracemalloc


def measure(T: int, how: str, H: int, reps: int, queue) -> None:
    import graphrnn as gr

    rec = gr.load("fig10_3", sizes={"H": H, "I": 8, "K": 8})
    data = rec.random_inputs(T, batch=1, seed=0)
    params = rec.init_params(seed=0)
    options = {"plain": {"copies": False}, "copies": {}, "checkpoint": {"checkpoint": True},
               "truncated": {"truncate": (50, 50)}}[how]
    # a tiny run first imports every module the mode uses (code, not memory the run needs)
    small = 2 * (int(options.get("checkpoint", 0) is True) + 1) + 100 * ("truncate" in options)
    rec.run(rec.random_inputs(small, batch=1, seed=1), params, **options)
    # the first run of length T is traced: it allocates everything the mode needs, the compiled
    # program's buffers (kept for the runs after it) included
    tracemalloc.start()
    run = rec.run(data, params, **options)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    loss = run.loss
    del run
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run = rec.run(data, params, **options)
        times.append(time.perf_counter() - start)
        del run
    queue.put({"T": T, "how": how, "time_s": sorted(times)[len(times) // 2], "peak_mb": peak / 2**20,
               "loss": loss})


def in_worker(*args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--checkpoint-T", type=int, default=10_000)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    rows = [in_worker(T, "plain", args.H, args.reps) for T in args.T]
    T = args.checkpoint_T
    plain = next((r for r in rows if r["T"] == T), None) or in_worker(T, "plain", args.H, args.reps)
    ck = in_worker(T, "checkpoint", args.H, args.reps)
    tr = in_worker(T, "truncated", args.H, args.reps)
    print(f"{'T':>8} {'mode':<12} {'time (s)':>9} {'peak (MB)':>10}", file=sys.stderr)
    for r in rows + [ck, tr]:
        print(f"{r['T']:>8} {r['how']:<12} {r['time_s']:>9.3f} {r['peak_mb']:>10.1f}", file=sys.stderr)
    summary = {
        "plain": rows,
        "checkpoint": {**ck, "memory_ratio": ck["peak_mb"] / plain["peak_mb"], "time_ratio": ck["time_s"] / plain["time_s"]},
        "truncated_50_50": tr,
    }
    print(f"checkpointed at T={T}: memory {summary['checkpoint']['memory_ratio']:.3f} x plain, "
          f"time {summary['checkpoint']['time_ratio']:.2f} x plain", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
