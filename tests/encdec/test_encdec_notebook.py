"""The notebook cells of §10.4 (examples/section_10_4.py) run, and show what their text says."""

import importlib
import importlib.util
from pathlib import Path

import numpy as np
from _deps import require

import graphrnn as gr

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _section():
    require("nbformat")
    spec = importlib.util.spec_from_file_location("section_10_4", EXAMPLES / "section_10_4.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = []


class Table:
    def __init__(self, header, rows):
        self.header, self.rows = header, rows
        TABLES.append(self)


def test_the_cells_run_and_draw_the_gallery_s_pictures(capsys):
    section = _section()
    drawn = {}

    def figure(name):
        module, function, args = section.PICTURES[name]
        drawn[name] = getattr(importlib.import_module(module), function)(*args)
        return drawn[name]

    space = {"np": np, "gr": gr, "Table": Table, "figure": figure}
    TABLES.clear()
    for cell in section.S10_4:
        if cell.cell_type == "code":
            exec(compile(cell.source, "section_10_4", "exec"), space)
    tables = TABLES
    out = capsys.readouterr().out
    assert set(drawn) == {"fig10_12", "fig10_12_unrolled"}
    assert {c.metadata["graphrnn"]["gallery"] for c in section.S10_4 if "graphrnn" in c.metadata} == set(drawn)
    assert "∇h(6) L == ∇C L: True" in out and "s(0) is C:       True" in out
    assert "all agree" in out and "the encoder's input" in out
    assert all(row[-1] is True for row in tables[1].rows)
    assert [row[2] for row in tables[0].rows] == ["initial state of s, input at every step", "initial state of s",
                                                  "input at every step"]
