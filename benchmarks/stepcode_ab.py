"""The generated step code before and after issue 11's part 5, in one process, interleaved.

``stepcode.INLINE`` (the common VJPs written out, products by ``ndarray.dot`` into scratch
arrays, no dead assignments), ``program.LOOPS`` (one generated loop per single-variable
recurrent stage) and ``program.SHADOW`` (with B = 1, a recurrent stage on step-major copies of
its buffers) all off reproduce the step code before; all on is the code now.  Two copies of
fig10_3 compile one program each; their runs alternate, so a swing in the machine's load hits
both alike.  Prints, per size, the best and the median time of each (wall clock, and the main
thread's CPU time, which a loaded machine disturbs less) and checks that both give the same
gradients bit for bit.  The last line is one JSON object.

    python benchmarks/stepcode_ab.py --reps 60
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import graphrnn as gr
from graphrnn.runtime import program, stepcode

SIZES = {"S1": (100, 128, 32, 64), "S2": (1000, 32, 1, 16), "S3": (50, 512, 64, 128)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--sizes", default="S1,S2,S3")
    args = parser.parse_args()
    out = {}
    for size in args.sizes.split(","):
        T, H, B, I = SIZES[size]
        recs = []
        for on in (False, True):
            stepcode.INLINE, program.LOOPS, program.SHADOW = on, on, on
            rec = gr.load("fig10_3", sizes={"H": H, "I": I, "K": I})
            data, params = rec.random_inputs(T, batch=B, seed=0), rec.init_params(seed=0)
            first = rec.run(data, params, copies=False)  # compiles with the flags of this copy
            recs.append((rec, first.grads["W"].copy()))
            del first
        stepcode.INLINE, program.LOOPS, program.SHADOW = True, True, True
        assert np.array_equal(recs[0][1], recs[1][1]), "the two step codes give other gradients"
        wall, cpu = {0: [], 1: []}, {0: [], 1: []}
        for i in range(2 * args.reps):
            v = i % 2
            w0, c0 = time.perf_counter(), time.thread_time()
            recs[v][0].run(data, params, copies=False)
            wall[v].append(time.perf_counter() - w0)
            cpu[v].append(time.thread_time() - c0)
        row = {}
        for v, name in ((0, "before"), (1, "after")):
            row[name] = {"wall_min_ms": 1e3 * min(wall[v]), "wall_median_ms": 1e3 * float(np.median(wall[v])),
                         "cpu_min_ms": 1e3 * min(cpu[v]), "cpu_median_ms": 1e3 * float(np.median(cpu[v]))}
            print(f"{size} {name:6s}: wall min {row[name]['wall_min_ms']:8.2f} median {row[name]['wall_median_ms']:8.2f}"
                  f" ms | cpu min {row[name]['cpu_min_ms']:8.2f} median {row[name]['cpu_median_ms']:8.2f} ms",
                  file=sys.stderr)
        row["after/before, cpu min"] = row["after"]["cpu_min_ms"] / row["before"]["cpu_min_ms"]
        row["after/before, wall median"] = row["after"]["wall_median_ms"] / row["before"]["wall_median_ms"]
        out[size] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
