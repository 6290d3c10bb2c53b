"""Read the mission's onboard library (stored sequences, planning budgets) for the composition root.

The flight software core never opens files: the process that builds it reads
these texts and hands them over (``build_flight_software(..., options)``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any


def onboard_library(path: str | Path | None = None, mission: str = "reference") -> dict[str, Any]:
    """``{"sequences": [text, ...], "planning": text | None}`` from a mission directory or the package."""
    root: Any = Path(path) if path else resources.files("fsw.missions") / mission
    seq_dir = root / "sequences"
    texts: list[str] = []
    if seq_dir.is_dir():
        for entry in sorted(seq_dir.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".seq"):
                texts.append(entry.read_text(encoding="utf-8"))
    planning = root / "planning.yaml"
    return {"sequences": texts, "planning": planning.read_text(encoding="utf-8") if planning.is_file() else None}
