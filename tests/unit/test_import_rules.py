"""Architecture rules, enforced by walking the imports of every module.

* Pure modules (protocol, dictionary, core, device models, ground's pure parts)
  import no I/O: no serial, threading, socket, time, os, subprocess, select ...
  and never call print().
* ``fsw`` never imports ``ground`` or ``hw_sim``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE_PACKAGES = ["fsw/protocol", "fsw/dictionary", "fsw/core", "hw_sim/models"]
PURE_MODULES = ["ground/decoding.py", "ground/commanding.py", "ground/verification.py", "ground/node.py",
                "hw_sim/faults.py", "ground/xtce.py", "ground/icd.py", "ground/fop1.py", "ground/scenario.py",
                "ground/spacelink.py", "ground/archive_query.py", "ground/console_model.py"]
FORBIDDEN = {"serial", "threading", "socket", "time", "os", "subprocess", "select", "selectors", "asyncio",
             "pty", "tty", "termios", "fcntl", "signal", "multiprocessing", "sqlite3", "shutil", "tempfile",
             "random", "datetime.datetime.now"}
# modules allowed in pure code although they touch the outside world in a narrow, read-only way
ALLOWED = {"importlib.resources"}


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for pkg in PURE_PACKAGES:
        files += sorted((ROOT / pkg).rglob("*.py"))
    files += [ROOT / m for m in PURE_MODULES if (ROOT / m).exists()]
    return files


def _imports(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_import_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for name in _imports(tree):
        if name in ALLOWED:
            continue
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.relative_to(ROOT)} imports {name}: pure code must not do I/O"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("print", "open", "input"), \
                f"{path.relative_to(ROOT)} calls {node.func.id}(): pure code must not do I/O"


def test_there_are_pure_files_to_check() -> None:
    files = _pure_files()
    assert len(files) >= 10, files


@pytest.mark.parametrize("path", sorted((ROOT / "fsw").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_fsw_never_imports_ground_or_hw_sim(path: Path) -> None:
    for name in _imports(ast.parse(path.read_text(), str(path))):
        assert name.split(".")[0] not in ("ground", "hw_sim"), f"{path.relative_to(ROOT)} imports {name}"
