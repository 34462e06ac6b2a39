"""Checks of a recursive network's gradients (§10.6): the engine against central differences.

For every parameter, the engine's gradient is compared with central differences of the
loss, entry by entry; the dummy copies' shares (one per tree node that uses the
parameter) must add up to it; and the gradient of every node's value is checked along a
random direction, by perturbing that node alone and re-running the nodes above it.

>>> import graphrnn as gr
>>> report = verify_tree(gr.zoo.load_tree("fig10_14"), ((1, 2), (3, 4)), batch=2)
>>> report.ok, report.worst < 1e-6
(True, True)

From the command line (the report, exit code 1 if a check fails)::

    python -m graphrnn.verify.tree fig10_14 --tree '(((1, 2), 3), (4, 5))' --batch 3
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError

#: central differences use this step; a relative error above TOLERANCE fails
EPS = 1e-6
TOLERANCE = 1e-6


@dataclass
class TreeReport:
    """Every check of :func:`verify_tree`: (what, engine norm, reference norm, relative error, ok)."""

    name: str
    tree: object  # the recurrence's Tree
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r[4] for r in self.rows)

    @property
    def worst(self) -> float:
        return max((r[3] for r in self.rows), default=0.0)

    def text(self) -> str:
        lines = [f"{self.name} over the tree {self.tree.nested} ({self.tree.n_leaves} leaves, depth "
                 f"{self.tree.depth})", f"  {'gradient':<34} {'engine':>12} {'reference':>12} {'rel. error':>11}"]
        for what, a, b, err, ok in self.rows:
            lines.append(f"  {what:<34} {a:>12.6g} {b:>12.6g} {err:>11.1e}  {'ok' if ok else 'FAILED'}")
        bad = sum(1 for r in self.rows if not r[4])
        lines.append(f"{len(self.rows)} checks, " + ("all passed" if not bad else f"{bad} FAILED")
                     + f"; worst relative error {self.worst:.1e}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)), 1e-12)
    return float(np.abs(a - b).max(initial=0)) / scale


def verify_tree(rec, tree, batch: int = 2, seed: int = 0, eps: float = EPS) -> TreeReport:
    """Check ``rec``'s gradients over ``tree`` on random data (see the module doc)."""
    if not rec.losses:
        raise DataError(f"{rec.name} has no loss, so there is no gradient to check")
    t = rec.tree_of(tree)
    data = rec.random_inputs(t, batch=batch, seed=seed)
    params = rec.init_params(seed=seed)
    run = rec.run(t, data, params)
    report = TreeReport(rec.name, t)
    for p, value in params.items():
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            up = dict(params)
            up[p] = value.copy()
            up[p][idx] += eps
            down = dict(params)
            down[p] = value.copy()
            down[p][idx] -= eps
            num[idx] = (rec.run(t, data, up, backward=False).loss - rec.run(t, data, down, backward=False).loss) \
                / (2 * eps)
        err = _rel(run.grads[p], num)
        report.rows.append((f"∇{p} L (central differences)", float(np.linalg.norm(run.grads[p])),
                            float(np.linalg.norm(num)), err, err < TOLERANCE))
        shares = run.copy_grads.get(p, {})
        total = sum(shares.values()) if shares else np.zeros_like(value)
        err = _rel(run.grads[p], total)
        report.rows.append((f"Σ_nodes ∇{p}^(node) L ({len(shares)} copies)", float(np.linalg.norm(run.grads[p])),
                            float(np.linalg.norm(total)), err, err < 1e-12))
    for key, g in _node_checks(rec, t, data, params, run, eps, seed):
        report.rows.append(g)
    return report


def _node_checks(rec, t, data, params, run, eps, seed):
    """∇ of each tree node's value along a random direction u: ⟨∇h L, u⟩ against
    (L(h + εu) − L(h − εu)) / 2ε, re-running the tree with that node's value shifted."""
    rng = np.random.default_rng(seed + 1)
    for key in sorted(run.node_grads, key=lambda k: (len(k), k)):
        if key not in run.values or run.values[key].ndim != 2:
            continue
        u = rng.standard_normal(run.values[key].shape)
        engine = float(np.sum(run.node_grads[key] * u))
        up = rec.run(t, data, params, backward=False, shift={key: eps * u}).loss
        down = rec.run(t, data, params, backward=False, shift={key: -eps * u}).loss
        ref = (up - down) / (2 * eps)
        err = abs(engine - ref) / max(abs(engine), abs(ref), 1e-12)
        yield key, (f"⟨∇{key} L, u⟩", engine, ref, err, err < TOLERANCE or abs(engine - ref) < 1e-9)


def main(argv=None) -> int:
    """``python -m graphrnn.verify.tree ARCH [--tree TREE] [--batch B] [--seed S]``: print the report."""
    import argparse
    import ast

    from .. import zoo
    from ..errors import GraphrnnError

    parser = argparse.ArgumentParser(prog="python -m graphrnn.verify.tree",
                                     description="check a recursive network's gradients (fig. 10.14)")
    parser.add_argument("arch", help="a recursive network of the zoo (fig10_14) or a .tree spec file")
    parser.add_argument("--tree", default="((1, 2), (3, 4))", help="nested pairs of leaf numbers")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        tree = ast.literal_eval(args.tree)  # a literal only: nothing is evaluated
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        print(f"error: --tree takes nested pairs of leaf numbers, e.g. '((1, 2), (3, 4))'; got {args.tree!r}")
        return 2
    try:
        report = verify_tree(zoo.load_tree(args.arch), tree, batch=args.batch, seed=args.seed)
    except GraphrnnError as exc:
        print(f"error: {exc}")
        return 2
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
