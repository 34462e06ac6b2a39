"""The op-level drawing: every engine op of a run, with its data and its gradient.

Each node is a small record — what it is (``tanh``; ``h^(2) = tanh``), its
data (shape and norm, or the values when there are few) and the gradient of the
loss with respect to it — coloured by what it means: parameter, dummy copy,
input, state, other per-step variable, loss, intermediate op (see
:data:`graphrnn.render.style.COLOURS`).  ``draw_ops`` takes a Run (its graph is
replayed, since a run frees its own) or any engine Tensor.

>>> import graphrnn as gr
>>> x = gr.Tensor(2.0, requires_grad=True, name="x")
>>> d = draw_ops(gr.tanh(x * x))
>>> sorted(n.data["op"] for n in d.scene.of_role("op"))
['leaf', 'mul', 'tanh']
"""

from __future__ import annotations

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import RenderError
from . import style
from .flow import live, op_flow, parse_key, source_tensor
from .folded import on_cycle, variable_graph
from .scene import Scene, to_digraph

MAX_NODES = 600


def _summary(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 0:
        return "empty"
    if a.size <= 3 and a.dtype.kind in "fiu":
        return "[" + ", ".join(style.number(float(v)) for v in a.ravel()) + "]"
    shape = "×".join(map(str, a.shape)) or "scalar"
    return f"{shape}, norm {style.number(float(np.linalg.norm(a)))}"


def _title(t: Tensor, key: str | None) -> str:
    op = t.op.name if t.op is not None else None
    if key is not None:
        var, step, what = parse_key(key)
        sup = style.step_sup(step) if step is not None else ""
        name = f"<B><I>{style.text(var)}</I></B>{sup}"
        return f"{name} = {style.text(op)}" if op and what != "copy" else (
            f"{name} copy" if what == "copy" else name)
    if t.name:
        return f"<B>{style.text(t.name)}</B>" + (f" = {style.text(op)}" if op else "")
    return style.text(op) if op else "constant"


def op_scene(source, root=None, seed=None, max_nodes: int | None = MAX_NODES) -> Scene:
    """The op-level :class:`Scene` of a Run (``root`` a key such as ``"L[3]"``; default the loss) or a Tensor."""
    keys: dict = {}
    kinds: dict = {}
    if isinstance(source, Tensor):
        top = source
        walkable = not any(getattr(n, "freed", False) for n in E.topological_order(top, only_grad=False))
    elif hasattr(source, "loss_tensor") and hasattr(source, "rec"):
        lv = live(source)
        root, top = source_tensor(lv, root or "L")
        keys = lv.key_of
        g = variable_graph(source.rec, source.mode)
        state = on_cycle(g)
        for tid, key in keys.items():
            var, step, what = parse_key(key)
            if what == "copy":
                kinds[tid] = "copy"
            elif var in g.nodes and step is not None:
                k = g.nodes[var]["kind"]
                kinds[tid] = "loss" if k == "loss" else "input" if k in ("input", "target", "context") else (
                    "state" if var in state else "computed")
        kinds[id(lv.root)] = "loss"
        walkable = True
    else:
        raise RenderError(f"draw_ops takes a Run (rec.run(...)) or an engine Tensor, not {type(source).__name__}")
    nodes = E.topological_order(top, only_grad=False)
    if max_nodes is not None and len(nodes) > max_nodes:
        raise RenderError(f"the op graph has {len(nodes):,} nodes, too many to read (at most {max_nodes}); draw a "
                          f"shorter run (fewer steps), or pass max_nodes=None")
    flow = op_flow(top, seed) if walkable and top.requires_grad else None
    scene = Scene(graph_attrs={"ranksep": "0.3", "nodesep": "0.25"})
    scene.info.update(flow=flow, root_uid=top.uid, source=root if isinstance(root, str) else None,
                      keys=set(keys.values()))
    ids = {}
    for t in nodes:
        if flow is not None:
            g = flow.node_grad.get(t.uid)
        else:
            g = t.grad
        if t is top:
            kind = "loss" if t.data.size == 1 else "computed"
        elif id(t) in kinds:
            kind = kinds[id(t)]
        elif t.op is None:
            kind = "parameter" if t.requires_grad else "input"
        else:
            kind = "op"
        key = keys.get(id(t))
        rows = [f"<TR><TD>{_title(t, key)}</TD></TR>",
                f'<TR><TD><FONT POINT-SIZE="10">data {style.text(_summary(t.data))}</FONT></TD></TR>']
        if t.requires_grad:
            gtext = _summary(g) if g is not None else "—"
            rows.append(f'<TR><TD><FONT POINT-SIZE="10">grad {style.text(gtext)}</FONT></TD></TR>')
        html = ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" BGCOLOR="'
                + style.COLOURS[kind] + '">' + "".join(rows) + "</TABLE>>")
        tip = f"{key or t.name or (t.op.name if t.op else 'constant')}: {kind}"
        node = scene.add("op", name=str(key or t.name or ""), kind=kind, row=None, html=html,
                         attrs={"tooltip": style.plain(tip), "fontsize": "12"},
                         data={"op": t.op.name if t.op else "leaf", "uid": t.uid, "key": key,
                               "grad_norm": None if g is None else float(np.linalg.norm(g))})
        ids[t.uid] = node
    for t in nodes:
        for slot, p in enumerate(t.parents):
            if p.uid in ids:
                scene.connect(ids[p.uid], ids[t.uid], data={"slot": slot, "key": (p.uid, t.uid, slot)})
    scene.label = _legend()
    return scene


def _legend() -> str:
    cells = "".join(f'<TD BGCOLOR="{style.COLOURS[k]}" BORDER="1" WIDTH="14"> </TD><TD ALIGN="LEFT">'
                    f'<FONT POINT-SIZE="11">{text}</FONT></TD>' for k, text in style.LEGEND)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3"><TR>{cells}</TR></TABLE>>'


def draw_ops(source, root: str | None = None, max_nodes: int | None = MAX_NODES):
    """Every engine op of ``source`` (a Run or a Tensor), each showing its data and gradient.

    For a Run, ``root`` picks the loss whose gradient is shown (``"L"``, the
    total, by default; or one ``"L[t]"``).  Raises :class:`~graphrnn.errors.RenderError`
    when the graph has more than ``max_nodes`` ops.
    """
    return to_digraph(op_scene(source, root, max_nodes=max_nodes), name="ops")
