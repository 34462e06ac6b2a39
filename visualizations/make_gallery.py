"""Regenerate this folder: the book's figures 10.2-10.11 and the gradient-path pictures (SVG and PNG),
with index.html and README.md showing them.

    python visualizations/make_gallery.py             # everything
    python visualizations/make_gallery.py --only fig10_3 grad_vanishing
"""

import sys
from pathlib import Path

from graphrnn.render.gallery import main

if __name__ == "__main__":
    sys.exit(main(["--out", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
