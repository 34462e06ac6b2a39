"""Helpers of the derivation tests: the zoo's cases and the comparison with the engine (the random
recurrences are tests/reference/random_specs.py's)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings

import graphrnn as gr
from graphrnn import zoo

SETTINGS = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])

def zoo_cases():
    """(name, mode) for every zoo architecture with a loss, in every mode it has."""
    out = []
    for name in zoo.names():
        rec = gr.load(name)
        if rec.losses:
            out += [(name, m) for m in (("teacher", "free", "scheduled") if rec.spec.feedbacks else ("teacher",))]
    return out


def mismatches(run, grads, rtol=1e-9) -> list[str]:
    """Where the derived gradients differ from the engine's (every key of run.grads and every
    dummy copy); relative to the largest entry of each array."""
    bad = []
    for k, engine in run.grads.items():
        engine = np.asarray(engine, dtype=np.float64)
        if k not in grads:
            bad.append(f"{k}: missing")
            continue
        ours = np.asarray(grads[k])
        scale = max(float(np.max(np.abs(engine), initial=0)), float(np.max(np.abs(ours), initial=0)), 1e-12)
        if ours.shape != engine.shape or float(np.max(np.abs(ours - engine), initial=0)) > rtol * scale + 1e-13:
            bad.append(f"{k}: {float(np.max(np.abs(ours - engine), initial=0)):.3e} (scale {scale:.3e})")
    for P, per in run.copy_grads.items():
        for t, engine in per.items():
            ours = grads.copies.get(P, {}).get(t)
            if ours is None:
                bad.append(f"{P}^({t}): missing")
                continue
            scale = max(float(np.max(np.abs(engine))), 1e-12)
            if float(np.max(np.abs(ours - engine))) > rtol * scale + 1e-13:
                bad.append(f"{P}^({t}): {float(np.max(np.abs(ours - engine))):.3e}")
    extra = set(grads) - set(run.grads)
    bad += [f"{k}: not a gradient of the run" for k in sorted(extra)]
    return bad
