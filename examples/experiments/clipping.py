"""Experiment (c): gradient clipping on an exploding-gradient setting (Pascanu, Mikolov and Bengio 2013).

A vanilla RNN (the zoo's fig10_3, H = 32) on the adding problem (T = 20), its recurrent matrix W
started at 1.5 × a random orthogonal matrix (spectral radius 1.5, so ∂h(t)/∂h(t−k) can grow like 1.5^k),
trained with SGD and momentum 0.9, from the same parameters and batches, with and without clipping the
gradient's norm to 1 (eqs. 10.48-10.49), at two learning rates and three seeds.  Writes clipping.png
(the loss curves and the gradient norms) and clipping.json, and prints the table of the README.

    python examples/experiments/clipping.py          # about a minute on 2 cores
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import graphrnn as gr
from graphrnn.train import SGD, Adding, Trainer, TrainError

HERE = Path(__file__).parent
H, T, STEPS, BATCH, RHO = 32, 20, 500, 32, 1.5
LRS = (0.02, 0.1)
SEEDS = (0, 1, 2)
CLIPS = (None, 1.0)


def train(rec, task, lr, clip, seed):
    params = rec.init_params(seed=seed, dtype=np.float32)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((H, H)))
    params["W"] = (RHO * q).astype(np.float32)
    trainer = Trainer(rec, task, params=params, optimizer=SGD(lr=lr, momentum=0.9), batch=BATCH, clip_norm=clip,
                      seed=seed, adapt=False, progress=False, profile_every=0)
    diverged = None
    try:
        trainer.fit(STEPS)
    except TrainError:
        diverged = len(trainer.history["loss"]) + 1  # the step that overflowed
    data = task.batch(np.random.default_rng(1000 + seed), 512, np.float32)
    test = None
    if diverged is None:
        run = rec.run(data, params=trainer.params, copies=False, backward=False, dtype=np.float32)
        test = task.score(run, data)["mse"]
    h = trainer.history
    return {"lr": lr, "clip": clip, "seed": seed, "loss": h["loss"], "grad_norm": h["grad_norm"],
            "clipped": sum(h["clipped"]), "diverged_at": diverged, "test_mse": test}


def main() -> int:
    task = Adding(T=T)
    rec = task.adapt(gr.load("fig10_3", sizes={"H": H}))
    results = []
    for lr in LRS:
        for clip in CLIPS:
            for seed in SEEDS:
                r = train(rec, task, lr, clip, seed)
                results.append(r)
                print(f"lr {lr:g} clip {clip}: seed {seed}: diverged at {r['diverged_at']}, test mse {r['test_mse']}",
                      file=sys.stderr)
    (HERE / "clipping.json").write_text(json.dumps(results))
    plot(results)
    print("| learning rate | clipping | runs diverged (step) | max ‖∇θL‖ | test MSE (mean of the finished) |")
    print("|---|---|---|---|---|")
    for lr in LRS:
        for clip in CLIPS:
            rs = [r for r in results if r["lr"] == lr and r["clip"] == clip]
            div = [r["diverged_at"] for r in rs if r["diverged_at"]]
            mses = [r["test_mse"] for r in rs if r["test_mse"] is not None]
            peak = max(max(r["grad_norm"]) for r in rs)
            print(f"| {lr:g} | {'norm ≤ 1' if clip else 'none'} | {len(div)}/{len(rs)}"
                  + (f" ({', '.join(map(str, div))})" if div else "") + f" | {peak:.3g} | "
                  + (f"{np.mean(mses):.3f}" if mses else "–") + " |")
    print(f"(predicting the mean gives MSE 1/6 = 0.167)")
    return 0


def plot(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(LRS), figsize=(11, 6.5), sharex=True)
    colors = {None: "tab:red", 1.0: "tab:blue"}
    for j, lr in enumerate(LRS):
        for r in (r for r in results if r["lr"] == lr):
            label = ("no clipping" if r["clip"] is None else "clip ‖g‖ ≤ 1") if r["seed"] == 0 else None
            steps = np.arange(1, len(r["loss"]) + 1)
            axes[0, j].plot(steps, r["loss"], color=colors[r["clip"]], lw=0.8, alpha=0.8, label=label)
            axes[1, j].plot(steps, r["grad_norm"], color=colors[r["clip"]], lw=0.8, alpha=0.8)
            if r["diverged_at"]:
                axes[0, j].plot(steps[-1], r["loss"][-1], "x", color="black", ms=7)
        axes[0, j].set_title(f"SGD, momentum 0.9, lr {lr:g}")
        axes[0, j].set_yscale("log")
        axes[1, j].set_yscale("log")
        axes[1, j].set_xlabel("step")
        axes[0, j].axhline(1 / 6, color="gray", ls=":", lw=1)
    axes[0, 0].set_ylabel("loss (MSE per sequence)")
    axes[1, 0].set_ylabel("‖∇θ L‖ before clipping")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Vanilla RNN (H={H}) on the adding problem (T={T}), W = {RHO} × orthogonal; × = overflow, "
                 f"dotted = predicting the mean", fontsize=10)
    fig.tight_layout()
    fig.savefig(HERE / "clipping.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
