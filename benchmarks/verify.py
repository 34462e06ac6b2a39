"""`graphrnn verify` end to end: wall-clock and CPU time of the command, as a user runs it (issue 12).

Each configuration runs the command in a fresh process (imports included), in turn, ``--reps``
times; the table gives the median wall-clock time and the median CPU time of the child process
(user + system: on a shared machine the wall clock also counts the time spent waiting for a core).

    python benchmarks/verify.py                              # lstm, 20 steps, H = 16: --fd sample 1 / sample 3 / all
    python benchmarks/verify.py --arch gru --steps 50 --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def once(arch: str, steps: int, size: str, fd: list[str]) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "graphrnn.cli", "verify", arch, "--steps", str(steps), "--size", size, "-q",
           "--fd", *fd]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return wall, cpu, out.stdout.strip().splitlines()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="lstm")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", default="H=16")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    configs = {"sample 1 (default)": ["sample", "1"], "sample 3": ["sample", "3"], "all": ["all"]}
    results = {name: [] for name in configs}
    summary = {}
    for _ in range(args.reps):
        for name, fd in configs.items():
            results[name].append(once(args.arch, args.steps, args.size, fd))
    print(f"graphrnn verify {args.arch} --steps {args.steps} --size {args.size}  (median of {args.reps})",
          file=sys.stderr)
    print(f"{'--fd':<20} {'wall (s)':>9} {'CPU (s)':>8}  summary", file=sys.stderr)
    for name, runs in results.items():
        wall = sorted(r[0] for r in runs)[len(runs) // 2]
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        print(f"{name:<20} {wall:9.2f} {cpu:8.2f}  {runs[-1][2]}", file=sys.stderr)
        summary[name] = {"wall_s": wall, "cpu_s": cpu}
    print(json.dumps({"arch": args.arch, "steps": args.steps, "size": args.size, "results": summary}))


if __name__ == "__main__":
    main()
