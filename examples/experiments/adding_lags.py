"""Experiment (a): a vanilla RNN vs an LSTM vs a GRU on the adding problem at growing lags
(Hochreiter and Schmidhuber 1997, exp. 4; the form of Le et al. 2015 and Arjovsky et al. 2016).

Each net (the zoo's fig10_3, lstm and gru, H = 32) is trained with Adam (lr 0.01, gradient norm
clipped to 1, batches of 32, float32) on sequences of T steps, T = 10, 20, 40, 80 by default: one mark
in the first half, one in the second, so the first marked number must be kept at least T/2 steps.
Every 50 steps the mean squared error on 256 held-out sequences is measured; predicting the mean
(1) whatever the data gives 1/6 ≈ 0.167, and a net "learns the lag" when it gets below 0.01.
Writes adding_lags.png and adding_lags.json and prints the README's table.

    python examples/experiments/adding_lags.py                       # about 4 minutes on 2 cores
    python examples/experiments/adding_lags.py --lags 10 20 40 80 160 --steps 3000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import graphrnn as gr
from graphrnn.train import Adam, Adding, Trainer

HERE = Path(__file__).parent
ARCHS = {"fig10_3": "vanilla RNN (fig10_3)", "lstm": "LSTM", "gru": "GRU"}
LEARNED = 0.01


def run_one(arch, T, steps, H, seed):
    task = Adding(T=T)
    trainer = Trainer(gr.load(arch, sizes={"H": H}), task, optimizer=Adam(lr=0.01), batch=32, clip_norm=1.0,
                      seed=seed, progress=False, profile_every=0)
    held = task.batch(np.random.default_rng(10_000 + seed), 256, np.float32)
    curve, started = [], time.perf_counter()
    while trainer.steps_done < steps:
        trainer.fit(min(50, steps - trainer.steps_done))
        run = trainer.rec.run(held, params=trainer.params, copies=False, backward=False, dtype=np.float32)
        curve.append((trainer.steps_done, task.score(run, held)["mse"]))
    reached = next((s for s, m in curve if m < LEARNED), None)
    return {"arch": arch, "T": T, "curve": curve, "final_mse": curve[-1][1], "best_mse": min(m for _, m in curve),
            "steps_to_learn": reached, "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lags", type=int, nargs="+", default=[10, 20, 40, 80])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--H", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    results = []
    for T in args.lags:
        for arch in ARCHS:
            r = run_one(arch, T, args.steps, args.H, args.seed)
            results.append(r)
            print(f"{arch} T={T}: final mse {r['final_mse']:.4f}, learned at {r['steps_to_learn']} "
                  f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)
    (HERE / "adding_lags.json").write_text(json.dumps({"args": vars(args), "results": results}))
    plot(results, args)
    print("| T (lag ≥ T/2) | " + " | ".join(ARCHS.values()) + " |")
    print("|---|" + "---|" * len(ARCHS))
    for T in args.lags:
        cells = []
        for arch in ARCHS:
            r = next(r for r in results if r["arch"] == arch and r["T"] == T)
            learned = f"learned at step {r['steps_to_learn']}" if r["steps_to_learn"] else "not learned"
            cells.append(f"{r['final_mse']:.4f} ({learned})")
        print(f"| {T} | " + " | ".join(cells) + " |")
    print(f"(test MSE after {args.steps} steps; predicting the mean gives 0.167; learned = below {LEARNED})")
    return 0


def plot(results, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.lags), figsize=(4 * len(args.lags), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    colors = {"fig10_3": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    for ax, T in zip(axes, args.lags):
        for r in (r for r in results if r["T"] == T):
            s, m = zip(*r["curve"])
            ax.plot(s, m, color=colors[r["arch"]], label=ARCHS[r["arch"]], marker=".", lw=1)
        ax.axhline(1 / 6, color="gray", ls=":", lw=1)
        ax.axhline(LEARNED, color="gray", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"T = {T}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("held-out MSE")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"The adding problem: Adam, clip 1, H = {args.H}, batch 32 (dotted: predicting the mean; "
                 f"dashed: learned)", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "adding_lags.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
