"""In Jupyter, an explorer page shows inline: a cell ending in gr.explore(...) displays the page in a frame."""

from __future__ import annotations

import html
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parents[2]


def test_a_notebook_cell_shows_the_page_inline():
    cell = nbformat.v4.new_code_cell('import graphrnn as gr\ngr.explore(gr.load("fig10_3"), steps=2, batch=1)')
    nb = nbformat.v4.new_notebook(cells=[cell])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}}).execute()
    (out,) = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
    shown = out["data"]["text/html"]
    assert shown.startswith('<iframe srcdoc="') and 'title="graphrnn explore"' in shown
    page = html.unescape(shown[len('<iframe srcdoc="'):shown.index('" style=')])
    assert page.startswith("<!doctype html>") and '"T":2' in page
    assert "<Explorer of fig10_3: T=2" in out["data"]["text/plain"]
