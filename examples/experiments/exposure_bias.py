"""Experiment (b): exposure bias, teacher forcing vs scheduled sampling (Bengio et al. 2015).

A generative RNN (reber_fed.rnn: h(t) reads the previous symbol y(t-1), fed back) learns the
embedded Reber grammar from streams of strings (T = 40 steps, batches of 32, Adam lr 0.01, clip 1,
float32).  Trained with teacher forcing, it only ever reads true symbols; trained with scheduled
sampling, at each step and sequence it reads its own sampled output with probability p, raised
linearly from 0 to p_end over training (p_end = 0.1 and 0.5 by default).  Both are then measured

* teacher-forced: the cross-entropy per symbol and the share of steps whose most likely next symbol
  the grammar allows, on held-out streams;
* free running (the test-time condition): 256 streams of 60 symbols sampled from the model, each fed
  back; the number of symbols before the first one the grammar forbids, and the whole strings in them.

Several seeds each.  Writes exposure_bias.png and exposure_bias.json and prints the README's table.

    python examples/experiments/exposure_bias.py        # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import graphrnn as gr
from graphrnn.train import Adam, Linear, Reber, Trainer
from graphrnn.train.tasks import reber_check

HERE = Path(__file__).parent
FREE_T, FREE_B = 60, 256


def free_running(rec, params, task, seed):
    """Sample FREE_B streams of FREE_T symbols, each symbol fed back; check them against the grammar."""
    placeholder = {"y": np.zeros((FREE_T, FREE_B), dtype=np.int64)}  # the truth is not read when free running
    run = rec.run(placeholder, params=params, mode="free", seed=seed, copies=False, backward=False,
                  dtype=np.float32)
    labels = np.stack([np.asarray(run.fed[f"{rec.fed_name('y')}[{t}]"]) for t in range(1, FREE_T + 1)])
    good, strings = zip(*(reber_check("B" + task.decode(labels[:, b])) for b in range(FREE_B)))
    return {"symbols_before_error": float(np.mean(good)) - 1, "strings_before_error": float(np.mean(strings)),
            "streams_without_error": float(np.mean(np.asarray(good) == FREE_T + 1))}


def run_one(mode, p_end, seed, args):
    task = Reber(T=40)
    rec = gr.Recurrence.from_file(HERE / "reber_fed.rnn", sizes={"H": args.H})
    trainer = Trainer(rec, task, optimizer=Adam(lr=0.01), batch=32, clip_norm=1.0, mode=mode,
                      p=Linear(0.0, p_end, args.steps) if mode == "scheduled" else 0.0, seed=seed,
                      progress=False, profile_every=0)
    started = time.perf_counter()
    trainer.fit(args.steps)
    held = task.batch(np.random.default_rng(5000 + seed), 256, np.float32)
    run = trainer.rec.run(held, params=trainer.params, copies=False, backward=False, dtype=np.float32)
    teacher = {"nll_per_symbol": run.loss / held["y"].size, **task.score(run, held)}
    free = free_running(trainer.rec, trainer.params, task, seed=7000 + seed)
    return {"mode": mode, "p_end": p_end, "seed": seed, "teacher": teacher, "free": free, "loss": trainer.history["loss"],
            "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--p-end", type=float, nargs="+", default=[0.1, 0.5])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    results = []
    configs = [("teacher", 0.0)] + [("scheduled", p) for p in args.p_end]
    for seed in range(args.seeds):
        for mode, p_end in configs:
            r = run_one(mode, p_end, seed, args)
            results.append(r)
            print(f"{mode} {p_end} seed {seed}: {r['teacher']} {r['free']} ({r['seconds']:.0f} s)", file=sys.stderr,
                  flush=True)
    (HERE / "exposure_bias.json").write_text(json.dumps({"args": vars(args), "results": results}))
    plot(results, configs)
    print("| training | NLL per symbol (teacher-forced) | allowed next symbol (teacher-forced) | "
          "free running: symbols before the first error (of 60) | whole strings before it | "
          "streams of 60 without error |")
    print("|---|---|---|---|---|---|")
    for mode, p_end in configs:
        rs = [r for r in results if r["mode"] == mode and r["p_end"] == p_end]

        def cell(part, key, fmt):
            values = [r[part][key] for r in rs]
            return f"{np.mean(values):{fmt}} ± {np.std(values):{fmt}}"

        name = "teacher forcing" if mode == "teacher" else f"scheduled sampling (p: 0 → {p_end:g})"
        print(f"| {name} | {cell('teacher', 'nll_per_symbol', '.3f')} | {cell('teacher', 'allowed_accuracy', '.3f')}"
              f" | {cell('free', 'symbols_before_error', '.1f')} | {cell('free', 'strings_before_error', '.2f')} | "
              f"{cell('free', 'streams_without_error', '.2f')} |")
    print(f"(mean ± standard deviation over {args.seeds} seeds; {args.steps} steps of training, H = {args.H})")
    return 0


def plot(results, configs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    colors = ["tab:blue", "tab:orange", "tab:red", "tab:purple"]
    names = ["teacher forcing" if m == "teacher" else f"scheduled, p → {p:g}" for m, p in configs]
    for i, (mode, p_end) in enumerate(configs):
        rs = [r for r in results if r["mode"] == mode and r["p_end"] == p_end]
        for r in rs:
            loss = np.convolve(r["loss"], np.ones(10) / 10, mode="valid")
            axes[0].plot(np.arange(10, len(r["loss"]) + 1), loss, color=colors[i], lw=1,
                         label=names[i] if r is rs[0] else None)
        values = [r["free"]["symbols_before_error"] for r in rs]
        axes[1].scatter(np.full(len(values), i), values, color=colors[i], zorder=3)
        axes[1].bar(i, np.mean(values), color=colors[i], alpha=0.3)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss per symbol (10-step mean)")
    axes[0].set_title("training (scheduled runs read some of their own samples)", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[1].set_xticks(range(len(configs)), names, fontsize=8)
    axes[1].set_ylabel("symbols before the first error")
    axes[1].set_title(f"free running: {FREE_B} sampled streams of {FREE_T} symbols, per seed", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "exposure_bias.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
