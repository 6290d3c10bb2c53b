"""Example test procedures for the reference mission, shipped with the ground tool.

Each module holds procedures: functions named ``test_*`` that take a
:class:`ground.procedures.Procedure` called ``proc``.  Run one file with
``ground procedure run checkout_fss --sim`` (or ``--pty``, or ``--link SPEC``),
or with pytest: ``pytest -p ground.pytest_plugin <file>``.  See docs/procedures.md.

Every procedure sets up what it needs (mission phase, payload power) and
leaves the payloads it used switched off, so the procedures of a bench can
run in any order.  ``_common`` holds the helpers they share.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["example_files", "example_path"]


def example_files() -> list[Path]:
    """The example procedure files, by name (helpers, whose names start with ``_``, excluded)."""
    root = Path(str(resources.files(__name__)))
    return sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))


def example_path(name: str) -> Path:
    """The file of example ``name`` (``checkout_fss`` or ``checkout_fss.py``); KeyError if there is none."""
    stem = name[:-3] if name.endswith(".py") else name
    for p in example_files():
        if p.stem == stem:
            return p
    raise KeyError(f"no example procedure {name!r}; examples: {', '.join(p.stem for p in example_files())}")
