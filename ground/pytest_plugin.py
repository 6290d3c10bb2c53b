"""pytest plugin: run test procedures (``def test_x(proc): ...``) on the simulated bench and over pseudo-terminals.

Load it explicitly (it is not auto-registered, so it never changes a pytest
run that did not ask for it)::

    pytest -p ground.pytest_plugin procedures/                  # every procedure on "sim" and on "pty"
    pytest -p ground.pytest_plugin --procedure-backend sim procedures/
    pytest -p ground.pytest_plugin --procedure-backend link --procedure-link run/ground.pty procedures/

or put ``pytest_plugins = ["ground.pytest_plugin"]`` in the ``conftest.py`` at
the root of a directory of procedures.

Each test that takes the ``proc`` fixture is parametrized over the selected
backends (ids ``sim``, ``pty``, ``link``):

* ``sim``: a fresh :class:`~ground.simbench.SimBench` per test, on the simulated clock;
* ``pty``: one ``hw-sim`` + ``fsw`` process pair on pseudo-terminals for the whole
  session (started at the first test that needs it, stopped at the end), one
  ground link shared by the tests, real time;
* ``link``: a flight software already running, reached on ``--procedure-link``.

On the shared backends (``pty``, ``link``) the procedures run in turn against
the same lander, so each must set up what it needs (see
``ground/procedures_examples``).  Every step is printed: pytest shows the
steps of a failed test, and all of them with ``-s``.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest

from .procedures import BACKEND_KINDS, Procedure, open_backend

DEFAULT_BACKENDS = "sim,pty"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("procedures", "lander test procedures (ground.pytest_plugin)")
    group.addoption("--procedure-backend", default=None, metavar="LIST",
                    help=f"comma-separated backends to run each procedure on: {', '.join(BACKEND_KINDS)} "
                         f"(default: {DEFAULT_BACKENDS})")
    group.addoption("--procedure-link", default=None, metavar="SPEC",
                    help="ground link of the 'link' backend (default: $GROUND_LINK or run/ground.pty)")
    group.addoption("--procedure-seed", type=int, default=1, metavar="N",
                    help="seed of the simulated hardware (sim, pty; default 1)")
    group.addoption("--procedure-phase", default=None, metavar="PHASE",
                    help="mission phase a new bench starts in (sim, pty; default PRELAUNCH)")


def selected_backends(config: pytest.Config) -> list[str]:
    raw = config.getoption("--procedure-backend") or DEFAULT_BACKENDS
    kinds = [k.strip() for k in raw.split(",") if k.strip()]
    bad = [k for k in kinds if k not in BACKEND_KINDS]
    if bad or not kinds:
        what = ", ".join(bad) if bad else repr(raw)
        raise pytest.UsageError(f"--procedure-backend: unknown backend(s) {what}; use {', '.join(BACKEND_KINDS)}")
    return list(dict.fromkeys(kinds))


def pytest_configure(config: pytest.Config) -> None:
    selected_backends(config)   # a bad --procedure-backend is a usage error before anything runs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "proc" in metafunc.fixturenames:
        kinds = selected_backends(metafunc.config)
        metafunc.parametrize("procedure_backend_kind", kinds, ids=kinds)


@pytest.fixture(scope="session")
def procedure_shared_backends(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Backends shared by the whole session ("pty", "link"), opened on first use and closed at the end."""
    from contextlib import ExitStack

    cfg = request.config
    opened: dict[str, Any] = {}
    with ExitStack() as stack:
        def get(kind: str) -> Any:
            if kind not in opened:
                link = cfg.getoption("--procedure-link") or os.environ.get("GROUND_LINK", "run/ground.pty")
                opened[kind] = stack.enter_context(open_backend(
                    kind, link=link, seed=cfg.getoption("--procedure-seed"),
                    phase=cfg.getoption("--procedure-phase")))
            return opened[kind]
        yield {"get": get}


@pytest.fixture
def proc(request: pytest.FixtureRequest, procedure_backend_kind: str,
         procedure_shared_backends: dict[str, Any]) -> Iterator[Procedure]:
    """A :class:`~ground.procedures.Procedure` on the backend of this parametrization."""
    cfg = request.config
    if procedure_backend_kind == "sim":
        with open_backend("sim", seed=cfg.getoption("--procedure-seed"),
                          phase=cfg.getoption("--procedure-phase")) as backend:
            with Procedure(backend, log=print, name=request.node.name) as p:
                yield p
        return
    backend = procedure_shared_backends["get"](procedure_backend_kind)
    if not backend.session.connected:
        pytest.fail(f"link {backend.session.link_spec} is not connected (is the flight software running?)")
    with Procedure(backend, log=print, name=request.node.name) as p:
        yield p
