"""Make the shared helpers of the export tests (``_export_testlib``) and of the recurrence tests importable."""

from __future__ import annotations

import sys
from pathlib import Path

for folder in (Path(__file__).parent, Path(__file__).parent.parent / "recurrence"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
