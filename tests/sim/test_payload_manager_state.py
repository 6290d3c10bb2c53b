"""A rule-based state machine (Hypothesis) over the payload manager, on the whole simulated bench.

Rules: power on and off, heaters, mode commands and other payload commands,
phase changes, silent, crashed, babbling and overcurrent payloads, fault
clearing, PAYLOAD_RESET, flight-software restarts and waiting.  Every rule
runs the bench on to the middle of a second (the manager works on whole
seconds), so every invariant is checked at a quiet instant.

Invariants:

* the power committed by accepted commands never exceeds the phase's
  allocation, in the manager's own accounts and in the hardware (the
  declared power of every payload's actual mode, the heaters and actuators
  that are on);
* a payload that is off (or still booting) never receives a forwarded TC;
* no TC gets two acceptance verdicts (one outcome per TC);
* in a phase without payload power no payload is powered, and a latched
  (SAFE, FAULT) payload is never powered;
* per-payload counters only grow while the flight software runs, and the
  heartbeat-failure counts and latches survive a restart exactly.
"""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from fsw.core.payloads import LATCHED
from fsw.dictionary import load_dictionary
from fsw.protocol.pus import PusTc
from tests.conftest import examples
from tests.sim.helpers import Bench

D = load_dictionary()
UNITS = tuple(s.name for s in D.systems_of_kind("payload"))
PHASES = tuple(D.phases)
# surface operations are where the payloads work: draw that phase (and prelaunch tests) more often
PHASE_DRAWS = PHASES + ("SURFACE", "SURFACE", "SURFACE", "PRELAUNCH")
MODES = {u: tuple(m for m in D.system(u).modes) for u in UNITS}
COUNTERS = ("packets", "bytes", "sci_bytes", "drops", "retries", "timeouts", "hb_total", "energy_wh")
EPS = 1e-6
STATS: Counter = Counter()


class PayloadManagerMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(0, 3), first=st.sets(st.sampled_from(UNITS), max_size=len(UNITS)),
                surface=st.booleans())
    def setup(self, seed: int, first: set[str], surface: bool) -> None:
        # the ground end is instantaneous: the subject is the manager and the payload lines
        self.b = Bench(power=(), seed=seed, baud=None)
        self.b.wait_pdu()
        self.sent: list[PusTc] = []
        self.last: dict[str, dict[str, float]] = {}
        self._snapshot()
        STATS["examples"] += 1
        if surface:
            self.send("SET_PHASE", phase="SURFACE")
        for unit in sorted(first):
            self.send("PAYLOAD_POWER_ON", unit=unit)
        self.advance(6.0)

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def mgr(self):
        return self.b.fsw.payloads

    def advance(self, dt: float) -> None:
        """Run on by about ``dt``, to the middle of a second: the flight software (started on a whole second)
        ticks on whole seconds, so invariants are checked half a second away from any decision."""
        now = self.b.clock.now()
        target = int(now + dt) + 0.5
        if target < now + dt:
            target += 1.0
        self.b.runner.run_until(target)
        STATS["sim_s"] += target - now

    def send(self, name: str, system: str | None = None, **args) -> PusTc:
        tc = self.b.send(name, system, **args)
        self.sent.append(tc)
        STATS["tcs"] += 1
        return tc

    def _snapshot(self) -> None:
        self.last = {n: {k: getattr(p, k) for k in COUNTERS} for n, p in self.mgr.payloads.items()}

    # -- rules ---------------------------------------------------------------------------------------
    @rule(unit=st.sampled_from(UNITS))
    def power_on(self, unit: str) -> None:
        self.send("PAYLOAD_POWER_ON", unit=unit)
        self.advance(6.0)  # ground waits for the completion (the payload heard), as a procedure would

    @rule()
    def power_on_all(self) -> None:
        for unit in UNITS:
            self.send("PAYLOAD_POWER_ON", unit=unit)
        self.advance(6.0)

    @rule(unit=st.sampled_from(UNITS))
    def power_off(self, unit: str) -> None:
        self.send("PAYLOAD_POWER_OFF", unit=unit)
        self.advance(0.5)

    @rule(unit=st.sampled_from(UNITS), on=st.booleans())
    def heater(self, unit: str, on: bool) -> None:
        self.send("HEATER_ON" if on else "HEATER_OFF", unit=unit)
        self.advance(0.5)

    @rule(data=st.data(), unit=st.sampled_from(UNITS))
    def set_mode(self, data: st.DataObject, unit: str) -> None:
        mode = data.draw(st.sampled_from(MODES[unit]))
        self.send(f"{unit}_SET_MODE", mode=mode)
        self.advance(1.0)

    @rule(which=st.sampled_from(["PING_FSS", "PING_LMS", "DRILL", "MEASURE", "DEPLOY", "LEVEL", "INTEG"]))
    def payload_command(self, which: str) -> None:
        if which.startswith("PING"):
            self.send("PING", which[5:])
        elif which == "DRILL":
            self.send("LISTER_DRILL_STEP", step_cm=2, measure_s=0)
        elif which == "MEASURE":
            self.send("LISTER_MEASURE", duration_s=60)
        elif which == "DEPLOY":
            self.send("LMS_DEPLOY", item="ELECTRODE_1")
        elif which == "LEVEL":
            self.send("FSS_LEVEL", target_urad=100)
        else:
            self.send("LUSEE_SET_INTEGRATION", integration_ms=500)
        self.advance(1.0)

    @rule(phase=st.sampled_from(PHASE_DRAWS))
    def set_phase(self, phase: str) -> None:
        tc = self.send("SET_PHASE", phase=phase)
        self.advance(0.5)
        STATS["phase_" + ("changed" if self.b.verif(tc)[-1:] == [7] else "vetoed")] += 1

    @rule(unit=st.sampled_from(UNITS),
          fault=st.sampled_from(["silent", "crash", "babble", "overcurrent", "heater_overcurrent"]))
    def fault(self, unit: str, fault: str) -> None:
        if fault == "heater_overcurrent":
            self.b.hw.inject("PDU", f"overcurrent:{unit}_HTR")
        else:
            self.b.hw.inject(unit, fault)
        STATS["fault_" + fault] += 1
        self.advance(1.0)

    @rule(unit=st.sampled_from(UNITS))
    def repair(self, unit: str) -> None:
        self.b.hw.inject(unit, "clear")   # (clears its PDU channels' faults too)
        self.advance(0.5)

    @rule(unit=st.sampled_from(UNITS))
    def reset(self, unit: str) -> None:
        self.send("PAYLOAD_RESET", unit=unit)
        self.advance(0.5)

    @rule(dt=st.sampled_from([2.0, 7.0, 20.0, 60.0, 180.0]))
    def wait(self, dt: float) -> None:
        self.advance(dt)

    @precondition(lambda self: STATS["restarts_this"] < 3)
    @rule()
    def restart(self) -> None:
        self.b.runner.run_until(float(math.ceil(self.b.clock.now())))  # restart on a whole second (see advance)
        before = {n: (p.hb_total, p.strikes, p.state if p.state in LATCHED else None)
                  for n, p in self.mgr.payloads.items()}
        self.b.restart_fsw()
        STATS["restarts"] += 1
        STATS["restarts_this"] += 1
        after = {n: (p.hb_total, p.strikes, p.state if p.state in LATCHED else None)
                 for n, p in self.mgr.payloads.items()}
        assert after == before  # heartbeat failures, strikes and latches come back exactly
        self.b.wait_pdu()
        self.advance(0.0)
        self._snapshot()  # data counters may fall back to the last persisted values (at most 60 s old)

    # -- invariants ------------------------------------------------------------------------------------
    @invariant()
    def budget_never_exceeded(self) -> None:
        alloc = self.b.fsw.phases.current.power_w
        assert self.mgr.committed_w() <= alloc + EPS
        hw = 0.0
        for name, m in self.b.payloads.items():
            if m.powered:
                hw += m.system.power_w.get(m.mode, 0.0)  # the declared power of its actual mode
        for ch in self.b.pdu.channels.values():
            if ch.on and ch.kind == "heater":
                hw += ch.heater_w
            elif ch.on and ch.kind == "actuator":
                hw += ch.power_w
        assert hw <= alloc + EPS, (hw, alloc, {n: (m.powered, m.mode) for n, m in self.b.payloads.items()})

    @invariant()
    def no_command_reaches_a_payload_that_is_off(self) -> None:
        """No TC forwarded from ground (source id 0 here) reaches a payload that is off or booting."""
        for name, m in self.b.payloads.items():
            assert m.tc_unpowered_by_source.get(0, 0) == 0, name

    @invariant()
    def one_acceptance_verdict_per_tc(self) -> None:
        seen: Counter = Counter()
        for tm in self.b.probe.tms(1):
            if tm.subservice in (1, 2):
                seen[tm.source_data[:4]] += 1
        mine = {(tc.packet_id.to_bytes(2, "big") + ((tc.seq_flags << 14) | tc.seq_count).to_bytes(2, "big"))
                for tc in self.sent}
        assert all(seen[k] <= 1 for k in mine)

    @invariant()
    def phase_and_latches_are_respected_by_the_hardware(self) -> None:
        phase = self.b.fsw.phases.current
        for name, m in self.b.payloads.items():
            if not phase.payload_power:
                assert not m.powered, name
            pl = self.mgr.payloads[name]
            if pl.state in LATCHED:  # off, or its switch-off just sent
                assert not m.powered or pl.op == "OFF", name
        if not phase.heaters:
            assert not any(ch.on for ch in self.b.pdu.channels.values() if ch.kind == "heater")

    @invariant()
    def counters_only_grow(self) -> None:
        for n, p in self.mgr.payloads.items():
            for k in COUNTERS:
                assert getattr(p, k) >= self.last[n][k] - EPS, (n, k)
            STATS["state_" + p.state] += 1
        self._snapshot()

    def teardown(self) -> None:
        for p in self.mgr.payloads.values():
            STATS["hb_failures"] += p.hb_total
            STATS["timeouts"] += p.timeouts
        STATS["restarts_this"] = 0


def test_payload_manager_state_machine() -> None:
    """Runs the machine, then checks it reached the states worth testing (in the same process)."""
    STATS.clear()
    run_state_machine_as_test(PayloadManagerMachine, settings=settings(
        max_examples=examples(30), stateful_step_count=30, deadline=None))
    summary = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
    print("payload manager state machine:", summary)
    for key in ("state_OPERATING", "state_SAFE", "state_FAULT", "state_BOOTING", "phase_changed", "phase_vetoed",
                "restarts", "hb_failures"):
        assert STATS[key] > 0, (key, summary)
