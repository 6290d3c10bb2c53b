"""The whole bench in one process on the simulated clock: flight software, every device model, a ground node.

These are the same components that run as three processes over pseudo-terminals
(``hw-sim``, ``fsw``, ``ground``), wired in memory by a
:class:`~fsw.core.simrunner.SimRunner` whose wires pace bytes at each unit's
baud.  The clock jumps to the next deadline, so hours of mission run in
seconds, and a given seed gives the same bytes every time.

Used by the mission runner (``ground mission``), the test-procedure API's
simulated backend and the tests.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping

from fsw.core.clock import SimClock
from fsw.core.deploy import provision
from fsw.core.flight import FlightSoftware, build_flight_software
from fsw.core.simrunner import SimRunner
from fsw.core.spacelink import SpaceLinkConfig, space_link_config
from fsw.core.state import MemoryStore, StateStore
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc
from hw_sim.assembly import Hardware, build_hardware

from .node import PORT, GroundNode
from .spacelink import GroundLinkConfig
from .verification import VerificationResult


class SimBench:
    """FSW + hardware + ground, wired in memory.

    ``store`` is the flight software's durable state; by default a fresh one, provisioned as at
    integration.  ``library`` is the onboard library (sequences, planning) as read by
    :func:`fsw.io.library.onboard_library`; pass ``None`` to read the
    reference one.  ``ground_baud`` paces the ground line like a bench UART
    (``None``: instantaneous); the mission runner replaces that line with the
    relay link model.

    ``space_link`` (True or a :class:`~fsw.core.spacelink.SpaceLinkConfig`)
    puts the space link on the ground line: TC frames and COP-1 up, TM frames
    and the packet stores down (docs/spacelink.md).  The lander's downlink
    rate follows ``ground_baud`` unless the config sets it; ``ground_link``
    configures the ground's end (its TM frame layout is taken from the lander's).
    """

    def __init__(self, dictionary: Dictionary | None = None, seed: int = 1, start: float | None = None,
                 phase: str = "PRELAUNCH", store: StateStore | None = None,
                 library: Mapping[str, Any] | None = None, ground_baud: int | None = 115200,
                 connect_ground: bool = True, options: Mapping[str, Any] | None = None,
                 space_link: "SpaceLinkConfig | bool | None" = None,
                 ground_link: GroundLinkConfig | None = None) -> None:
        self.dictionary = dictionary or load_dictionary()
        if library is None:
            from fsw.io.library import onboard_library  # reading files belongs to the composition root

            library = onboard_library()
        self.clock = SimClock(self.dictionary.launch_time if start is None else start)
        self.runner = SimRunner(self.clock)
        if store is None:
            # a fresh store is a lander straight from integration: the deploy units are recorded as
            # stowed and never fired (docs/deploy.md); without that record they would read UNKNOWN
            store = MemoryStore()
            provision(store, [s.name for s in self.dictionary.systems_of_kind("deploy")])
        self.store: StateStore = store
        self.library = dict(library)
        self.fsw_options = {"initial_phase": phase, **self.library, **dict(options or {})}
        self.link_config: SpaceLinkConfig | None = space_link_config(space_link)
        if self.link_config is not None:
            if space_link is True and ground_baud:
                # 8N1: 8 of every 10 bits on the line are data
                self.link_config = replace(self.link_config, downlink_bps=ground_baud * 0.8)
            self.fsw_options["space_link"] = self.link_config
            ground_link = replace(ground_link or GroundLinkConfig(), scid=self.link_config.scid,
                                  tm=self.link_config.tm)
        self.fsw: FlightSoftware = build_flight_software(self.dictionary, self.store, self.fsw_options)
        self.runner.add(self.fsw)
        self.hardware: Hardware = build_hardware(self.dictionary, seed)
        self.hardware.connect(self.runner, self.fsw)
        self.ground = GroundNode(self.dictionary, space_link=ground_link if self.link_config is not None else None)
        self.runner.add(self.ground)
        if connect_ground:
            self.runner.connect(self.ground, PORT, self.fsw, FlightSoftware.GROUND, baud=ground_baud)
        self.runner.start()

    # -- time ------------------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.clock.now()

    def run_for(self, dt: float, stop: Callable[[], bool] | None = None) -> float:
        return self.runner.run_for(dt, stop)

    def run_until(self, t: float, stop: Callable[[], bool] | None = None) -> float:
        return self.runner.run_until(t, stop)

    # -- commanding ------------------------------------------------------------------------------------
    def submit(self, name: str, system: str | None = None, confirm: str | None = None,
               timeout: float | None = None, **args: Any) -> PusTc:
        return self.ground.send(name, self.now, system=system, confirm=confirm, args=args, timeout=timeout)

    def wait(self, tc: PusTc) -> VerificationResult:
        """Run the simulation until ``tc``'s verification is complete, failed or timed out."""
        def done() -> bool:
            st = self.ground.status(tc)
            return st is not None and st.done
        st = self.ground.status(tc)
        if st is None:
            raise KeyError(f"telecommand apid={tc.apid} seq={tc.seq_count} is not tracked")
        self.runner.run_until(st.deadline + 1.0, done)
        final = self.ground.status(tc)
        assert final is not None
        return final

    def send(self, name: str, system: str | None = None, confirm: str | None = None,
             timeout: float | None = None, **args: Any) -> VerificationResult:
        """Send and run until the verification completes (the simulated-clock twin of GroundSession.send)."""
        return self.wait(self.submit(name, system, confirm, timeout, **args))

    def wait_for(self, predicate: Callable[[GroundNode], bool], timeout: float) -> bool:
        """Run until ``predicate(ground)`` holds or ``timeout`` simulated seconds pass."""
        if predicate(self.ground):
            return True
        self.runner.run_until(self.now + timeout, lambda: predicate(self.ground))
        return predicate(self.ground)

    def value(self, param: str, default: Any = None) -> Any:
        """Latest engineering value of a parameter as the ground received it."""
        return self.ground.value(param, default)
