"""Long sequences: time and peak memory of BPTT, plain and checkpointed (issues 6 and 11).

Each configuration runs in a fresh worker process: first under ``tracemalloc``, for
the peak of the memory Python and numpy allocated during the run beyond the data
(the interpreter's own baseline and the data arrays are not counted; the buffers a
compiled program keeps for later runs are), then timed without it.  Prints a table
and, last, one JSON object.

Two parts:

* the book's standard RNN (fig10_3) with H = 16 (I = K = 8, batch 1) at several
  lengths, plain (``copies=False``), checkpointed and truncated;
* issue 11's long case, fig10_3 with H = 64, I = K = 16, batch 4, at T = 100,000
  (and 10,000, for linearity): graphrnn ``copies=False`` beside the hand-written
  numpy loop of ``bptt.py`` (which keeps h and the softmax of every step).

    python benchmarks/memory.py                 # everything
    python benchmarks/memory.py --T 1000 10000  # other lengths for the first part
    python benchmarks/memory.py --long-only     # only the second part
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import tracemalloc
from pathlib import Path


def _problem(case, T):
    """(graphrnn recurrence or None, data, params) of a case ``(H, I, K, B)``, seeded."""
    import graphrnn as gr

    H, I, K, B = case
    rec = gr.load("fig10_3", sizes={"H": H, "I": I, "K": K})
    return rec, rec.random_inputs(T, batch=B, seed=0), rec.init_params(seed=0)


def measure(T: int, how: str, case, reps: int, queue) -> None:
    rec, data, params = _problem(case, T)
    if how == "numpy loop":
        sys.path.insert(0, str(Path(__file__).parent))
        from bptt import numpy_bptt

        def once():
            loss, _ = numpy_bptt(params, data["x"], data["y"])
            return loss
    else:
        options = {"plain": {"copies": False}, "copies": {}, "checkpoint": {"checkpoint": True},
                   "truncated": {"truncate": (50, 50)}}[how]
        # a tiny run first imports every module the mode uses (code, not memory the run needs)
        small = 2 * (int(options.get("checkpoint", 0) is True) + 1) + 100 * ("truncate" in options)
        rec.run(rec.random_inputs(small, batch=case[3], seed=1), params, **options)

        def once():
            return rec.run(data, params, **options).loss
    # the first run of length T is traced: it allocates everything the mode needs, the compiled
    # program's buffers (kept for the runs after it) included
    tracemalloc.start()
    loss = once()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    queue.put({"T": T, "how": how, "case": list(case), "time_s": sorted(times)[len(times) // 2],
               "peak_mb": peak / 1e6, "loss": loss})


def in_worker(*args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _print(rows) -> None:
    print(f"{'T':>8} {'H,I,K,B':<12} {'mode':<12} {'time (s)':>9} {'peak (MB)':>10} {'B/step':>8}", file=sys.stderr)
    for r in rows:
        print(f"{r['T']:>8} {','.join(map(str, r['case'])):<12} {r['how']:<12} {r['time_s']:>9.3f} "
              f"{r['peak_mb']:>10.1f} {r['peak_mb'] * 1e6 / r['T']:>8.0f}", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--checkpoint-T", type=int, default=10_000)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--long-T", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--long-only", action="store_true")
    args = ap.parse_args(argv)
    summary = {}
    if not args.long_only:
        small = (args.H, 8, 8, 1)
        rows = [in_worker(T, "plain", small, args.reps) for T in args.T]
        T = args.checkpoint_T
        plain = next((r for r in rows if r["T"] == T), None) or in_worker(T, "plain", small, args.reps)
        ck = in_worker(T, "checkpoint", small, args.reps)
        tr = in_worker(T, "truncated", small, args.reps)
        _print(rows + [ck, tr])
        summary = {"plain": rows, "truncated_50_50": tr,
                   "checkpoint": {**ck, "memory_ratio": ck["peak_mb"] / plain["peak_mb"],
                                  "time_ratio": ck["time_s"] / plain["time_s"]}}
        print(f"checkpointed at T={T}: memory {summary['checkpoint']['memory_ratio']:.3f} x plain, "
              f"time {summary['checkpoint']['time_ratio']:.2f} x plain", file=sys.stderr)
    long_case = (64, 16, 16, 4)
    long_rows = []
    for T in args.long_T:  # interleaved: numpy, graphrnn, at each length
        long_rows += [in_worker(T, "numpy loop", long_case, args.reps), in_worker(T, "plain", long_case, args.reps)]
    _print(long_rows)
    for T in args.long_T:
        ref, ours = [r for r in long_rows if r["T"] == T]
        print(f"T={T}, H=64 I=K=16 B=4: graphrnn memory {ours['peak_mb'] / ref['peak_mb']:.2f} x the numpy loop's, "
              f"time {ours['time_s'] / ref['time_s']:.2f} x", file=sys.stderr)
    summary["long"] = long_rows
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
