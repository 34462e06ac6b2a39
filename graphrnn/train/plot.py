"""``curves.png``: the loss and the gradient norms over training, and the ‖∇h(t) L‖ profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_history(history: dict, path, title: str = "") -> Path:
    """Draw three panels from a trainer's history and save them to ``path`` (PNG, SVG or PDF):
    the loss against the step; the gradient norm per parameter and in all (before clipping; the
    steps that were clipped marked); the last recorded profile ‖∇h(t) L‖ against t."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), gridspec_kw={"width_ratios": [1, 1.35, 1]})
    steps = np.arange(1, len(history["loss"]) + 1)
    ax = axes[0]
    ax.plot(steps, history["loss"], lw=1, color="tab:blue")
    ax.set_yscale("log" if min(history["loss"], default=1) > 0 else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss ({history.get('loss_scale', 'mean')})")
    ax.set_title("loss")
    ax = axes[1]
    for name, norms in history["grad_norm_param"].items():
        ax.plot(steps, norms, lw=0.8, label=name)
    ax.plot(steps, history["grad_norm"], lw=1.4, color="black", label="all")
    clipped = np.flatnonzero(history["clipped"])
    if clipped.size:
        ax.plot(steps[clipped], np.asarray(history["grad_norm"])[clipped], "x", color="tab:red", ms=3,
                label="clipped")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("gradient norm ‖∇θ L‖ (before clipping)")
    ax.legend(fontsize=7, ncol=1 + len(history["grad_norm_param"]) // 8, loc="upper left",
              bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax = axes[2]
    profile = history.get("profile") or {}
    if profile.get("norms"):
        norms = np.asarray(profile["norms"][-1])
        ax.plot(np.arange(1, len(norms) + 1), norms, marker=".", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"‖∇{profile['variable']}(t) L‖ at step {profile['step'][-1] + 1}")
    else:
        ax.text(0.5, 0.5, "no profile recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("‖∇h(t) L‖")
    ax.set_xlabel("t")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
