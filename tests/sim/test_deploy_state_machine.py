"""Rule-based state machine over the whole deploy chain: arbitrary ground commands, restarts, kills, faults.

Hypothesis drives the flight software (in a killable process, see
``deploy_bench.FswHost``), both release controllers and the PDU stand-in,
in simulated time, with arbitrary sequences of:

* ground commands: DEPLOY_ARM / FIRE / DISARM / OVERRIDE for either unit, an
  ARM-then-FIRE macro (so deep states are reached), replays of earlier TCs
  (the same bytes), the controllers' own relay commands sent directly, phase
  changes;
* restarts (and a watchdog that restarts a dead flight software), and kills at
  the next, second, third or fourth durable write;
* hardware faults: open-circuit actuators, a stuck release, one failed switch
  per unit, switch chatter, a silent controller, garbage on a line, a PDU trip,
  a damaged or deleted durable record;
* waits from nothing to a minute and more.

An independent oracle replays what ground saw (the PUS-1 reports, in order)
and what the hardware did (each controller's own ``fire_log``), and checks
after every step:

1. every actuation belongs to a FIRE that ground had accepted, and that FIRE
   came while an ARM of the same unit was valid: completed, inside its window,
   not cleared since by a disarm, another hazardous command, a phase change,
   a restart or a crash;
2. nothing fires outside the DEPLOY phase, and every actuation happened with
   both controller relays closed (the fire switch is the third inhibit);
3. at most one fire sequence per unit (A, then at most B), across restarts
   and kills, unless ground overrode the unit's state in between; and never a
   new sequence once the unit is physically released;
4. the minimum spacing between the two units' actuations;
5. one outcome per telecommand: exactly one acceptance report (pass or fail)
   for each TC the flight software was alive to process; every deploy
   rejection also comes with a DEPLOY_REJECTED event with the same code;
6. a DEPLOY_RELEASED event only after the hardware really released.

The run is deterministic (``derandomize``); ``DEPLOY_SM_EXAMPLES`` and
``DEPLOY_SM_STEPS`` make it longer.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from fsw.core.deploy import record_key
from fsw.core.state import load_record
from fsw.protocol.pus import PusTc
from tests.sim.deploy_bench import UNITS, DeployBench

SPACING_S = 20.0
ARM_TIMEOUT_S = 10.0
EXAMPLES = int(os.environ.get("DEPLOY_SM_EXAMPLES", "160"))
STEPS = int(os.environ.get("DEPLOY_SM_STEPS", "45"))

#: what the whole run did, summed over every example (checked and reported by the test)
STATS: Counter = Counter()

DEPLOY_CMDS = ("DEPLOY_ARM", "DEPLOY_FIRE", "DEPLOY_DISARM", "DEPLOY_OVERRIDE")
# weighted choices (drawn from a Hypothesis-controlled Random: sampled_from favours its first elements)
GROUND_ACTIONS = ("arm_fire", "fire_to_verdict", "arm_clear_fire", "kill_mid_fire", "arm", "fire", "disarm",
                  "override", "replay", "direct", "phase")
GROUND_WEIGHTS = (5, 3, 3, 2, 2, 2, 1, 1, 2, 1, 2)
#: hardware conditions the fire_to_verdict macro runs a whole fire under
SCENARIOS = ("clean", "open_A", "open_both", "stuck", "failed_switch", "silent_mid", "short_mid", "phantom_switch")
#: ways of clearing an arm that the arm_clear_fire macro tries, just before a FIRE
CLEARINGS = ("disarm", "disarm_other", "arm_other", "fire_other", "override", "direct", "phase", "timeout")
FAULTS = ("open_circuit", "open_circuit", "open_circuit", "stuck_release", "stuck_release", "failed_switch", "chatter",
          "silent", "unsilent", "garbage", "pdu_trip", "repair", "repair", "repair", "damage_record")
DIRECT_HAZARDS = ("BUS_ENABLE", "ARM", "FIRE")


class DeployMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.b = DeployBench(deploy={"spacing_s": SPACING_S, "arm_timeout_s": ARM_TIMEOUT_S}, quiet=True)
        self.b.settle_safe()
        STATS["examples"] += 1
        # what ground sent: request key -> (name, unit, args); and every send (key, time, alive?)
        self.by_key: dict[tuple[int, int], tuple[str, str | None, dict]] = {}
        self.sends: list[tuple[tuple[int, int], float, bool, int]] = []
        self.sent_tcs: list[PusTc] = []
        self.failed_switch = {u: False for u in UNITS}
        # oracle state, advanced incrementally over the ground log and the hardware logs
        self.cursor = 0
        self.fire_cursor = {u: 0 for u in UNITS}
        self.boot_cursor = 0
        self.crash_cursor = 0
        self.armed: dict[str, float | None] = {u: None for u in UNITS}
        self.phase = "DEPLOY"
        self.accepted_fires: dict[str, list[float]] = {u: [] for u in UNITS}
        self.overrides: Counter = Counter()
        self.seq_actuations: dict[tuple[str, int], list[str]] = {}
        self.sequences: dict[str, set[int]] = {u: set() for u in UNITS}
        self.actuations: dict[str, list[float]] = {u: [] for u in UNITS}
        self.forgotten_before: dict[str, float] = {u: float("-inf") for u in UNITS}
        self.acceptances: Counter = Counter()
        self.rejections: Counter = Counter()
        self.rejected_events: Counter = Counter()
        self.checked_sends = 0
        self.boots_seen: list[tuple[int, float]] = []   # (log index, time) of each boot or crash
        self.hw_armed: dict[tuple[int, int, float], bool] = {}  # FIRE sent while the hardware was armed?
        self.rng = random.Random(0)

    # -- helpers ---------------------------------------------------------------------------
    def _send(self, name: str, system: str | None = None, **args) -> PusTc:
        b = self.b
        tc = b.tc(name, system, **args)
        unit = args.get("unit") or (system if system in UNITS else None)
        self.by_key[(tc.packet_id, tc.seq_count)] = (name, unit, args)
        if name == "DEPLOY_FIRE":
            m = b.models[unit]
            self.hw_armed[(tc.packet_id, tc.seq_count, b.now)] = m.bus_relay and m.arm_relay and b.pdu_on(unit)
        self._transmit(tc)
        return tc

    def _transmit(self, tc: PusTc) -> None:
        self.sent_tcs.append(tc)
        self.sends.append(((tc.packet_id, tc.seq_count), self.b.now, self.b.host.alive, len(self.b.probe.log)))
        self.b.send_tc(tc)
        self.b.run(0.0)  # the instant's work: processed now (instant ground link)
        STATS["tcs"] += 1

    def _step(self) -> None:
        STATS["steps"] += 1
        if not self.b.host.alive and self.rng.random() < 0.6:
            # the watchdog restarts a dead flight software (the restart rule does it too, at any time)
            self.b.store.crash_after = None
            self.b.restart()
            STATS["watchdog_restarts"] += 1

    # -- rules ------------------------------------------------------------------------------------
    @initialize(seed=st.integers(min_value=0, max_value=2**32 - 1))
    def seed_choices(self, seed: int) -> None:
        """The weighted choices inside rules come from this generator (``sampled_from`` leans hard towards its
        first elements); the seed is Hypothesis's, so a run is still deterministic and replayable."""
        self.rng = random.Random(seed)

    # Hypothesis picks rules uniformly, so the actions are grouped into a few rules with weighted choices
    # inside: ground commands (three rules' worth), waits (two), the process (restart, kill), faults.

    @rule(data=st.data())
    def ground(self, data: st.DataObject) -> None:
        self._ground(data)

    @rule(data=st.data())
    def ground_more(self, data: st.DataObject) -> None:
        self._ground(data)

    @rule(data=st.data())
    def ground_again(self, data: st.DataObject) -> None:
        self._ground(data)

    def _ground(self, data: st.DataObject) -> None:
        self._step()
        what = self.rng.choices(GROUND_ACTIONS, weights=GROUND_WEIGHTS)[0]
        unit = data.draw(st.sampled_from(UNITS), label="unit")
        if what == "arm_clear_fire":
            self.arm_clear_fire(unit)
        elif what == "fire_to_verdict":
            self.fire_to_verdict(unit)
        elif what == "kill_mid_fire":
            self.kill_mid_fire(unit)
        elif what == "arm_fire":
            gap = data.draw(st.sampled_from([0.0, 0.01, 0.2, 5.0, ARM_TIMEOUT_S - 1, ARM_TIMEOUT_S + 1]), label="gap")
            self.arm_then_fire(unit, gap, data.draw(st.booleans(), label="settle"),
                               data.draw(st.booleans(), label="await_verdict"))
        elif what in ("arm", "fire", "disarm"):
            self._send(f"DEPLOY_{what.upper()}", unit=unit)
        elif what == "override":
            self._send("DEPLOY_OVERRIDE", unit=unit, state=data.draw(st.sampled_from(["STOWED", "RELEASED"])))
        elif what == "replay":
            if self.sent_tcs:
                self._transmit(data.draw(st.sampled_from(self.sent_tcs), label="replayed"))
        elif what == "direct":
            role = data.draw(st.sampled_from(DIRECT_HAZARDS + ("SAFE",)), label="role")
            self._send(f"{unit}_{role}", unit, **({"actuator": "A"} if role == "FIRE" else {}))
        else:
            self._send("SET_PHASE", phase=self.rng.choice(["DEPLOY", "DEPLOY", "LUNAR_ORBIT", "DESCENT", "CRUISE"]))

    def arm_then_fire(self, unit: str, gap: float, settle: bool, await_verdict: bool) -> None:
        """ARM, wait for its outcome (or 2 s), wait ``gap``, FIRE, and perhaps wait for the FIRE's verdict
        (up to 90 s, its time-out) as an operator would: the way deep states are reached.

        Sometimes (from the example's generator) an actuator fault comes first, or the flight software is
        set to die at the 1st to 4th durable write from the FIRE on (and is perhaps restarted afterwards):
        the kill-at-every-write-step exploration, inside arbitrary histories.
        """
        b, rng = self.b, self.rng
        if rng.random() < 0.15:  # an attempt in whatever phase comes up
            self._send("SET_PHASE", phase=rng.choice(["DEPLOY", "LUNAR_ORBIT", "DESCENT", "CRUISE"]))
        if settle:
            b.settle_safe(3.0)
        n = len(b.probe.log)
        arm = self._send("DEPLOY_ARM", unit=unit)
        b.await_verdict(arm, 2.0, n)
        b.run(gap)
        r = rng.random()
        if r < 0.15:
            b.models[unit].inject_open_circuit(rng.choice("AB"), b.now)
        elif r < 0.25:
            b.models[unit].inject_stuck_release()
        kill = rng.random() < 0.25 and b.host.alive
        if kill:
            b.crash_at_write(rng.randrange(4))
        n = len(b.probe.log)
        fire = self._send("DEPLOY_FIRE", unit=unit)
        if await_verdict or kill or rng.random() < 0.3:
            b.await_verdict(fire, 90.0, n)
        if kill and not b.host.alive and rng.random() < 0.7:
            b.store.crash_after = None
            b.restart()
            STATS["restarts"] += 1
            if rng.random() < 0.5:  # the operator tries again after the reboot
                STATS["retry_after_reboot"] += 1
                b.settle_safe(3.0)
                n = len(b.probe.log)
                b.await_verdict(self._send("DEPLOY_ARM", unit=unit), 2.0, n)
                n = len(b.probe.log)
                b.await_verdict(self._send("DEPLOY_FIRE", unit=unit), 90.0, n)

    def fire_to_verdict(self, unit: str) -> None:
        """A whole fire under one hardware condition, to its verdict; then ground may override a FAILED or
        UNKNOWN unit (it looked: usually it tells the truth, not always)."""
        b, rng = self.b, self.rng
        m = b.models[unit]
        scenario = rng.choice(SCENARIOS)
        STATS[f"scenario_{scenario}"] += 1
        if scenario == "open_A":
            m.inject_open_circuit("A", b.now)
        elif scenario == "open_both":
            m.inject_open_circuit("A", b.now)
            m.inject_open_circuit("B", b.now)
        elif scenario in ("stuck", "phantom_switch"):
            m.inject_stuck_release()
        elif scenario == "failed_switch" and not self.failed_switch[unit]:
            self.failed_switch[unit] = True
            m.inject_failed_switch(rng.randrange(2), rng.choice(["closed", "open"]), b.now)
        b.settle_safe(3.0)
        n = len(b.probe.log)
        arm = self._send("DEPLOY_ARM", unit=unit)
        b.await_verdict(arm, 2.0, n)
        n = len(b.probe.log)
        fire = self._send("DEPLOY_FIRE", unit=unit)
        if scenario in ("silent_mid", "short_mid", "phantom_switch"):
            b.run(0.5)
            if scenario == "silent_mid":
                m.silent = True
            elif scenario == "short_mid":
                b.short_circuit(unit)
            elif not self.failed_switch[unit]:  # one switch fails open while nothing has released
                self.failed_switch[unit] = True
                m.inject_failed_switch(rng.randrange(2), "open", b.now)
        b.await_verdict(fire, 90.0, n)
        m.silent = False
        b.run(2.0)
        if b.host.alive and b.unit_state(unit) in ("FAILED", "UNKNOWN") and rng.random() < 0.6:
            truth = "RELEASED" if m.released_at is not None else "STOWED"
            lie = {"RELEASED": "STOWED", "STOWED": "RELEASED"}[truth]
            self._send("DEPLOY_OVERRIDE", unit=unit, state=truth if rng.random() < 0.8 else lie)
            if rng.random() < 0.5:  # and tries again
                self._arm_fire_verdict(unit)
        if rng.random() < 0.5:
            m.clear_faults(b.now)
            b.repair_pdu(unit)

    def _arm_fire_verdict(self, unit: str) -> None:
        b = self.b
        b.settle_safe(3.0)
        n = len(b.probe.log)
        b.await_verdict(self._send("DEPLOY_ARM", unit=unit), 2.0, n)
        n = len(b.probe.log)
        b.await_verdict(self._send("DEPLOY_FIRE", unit=unit), 90.0, n)

    def kill_mid_fire(self, unit: str) -> None:
        """Kill at every write step, inside an arbitrary history: the first attempt does not release (an
        open-circuit A or a stuck release), the flight software dies at the 2nd, 3rd or 4th durable write of
        the sequence (after FIRING was recorded), the watchdog restarts it, and ground tries ARM and FIRE
        again: the unit must read UNKNOWN and nothing may fire until an override."""
        b, rng = self.b, self.rng
        m = b.models[unit]
        if rng.random() < 0.5:
            m.inject_open_circuit("A", b.now)
        else:
            m.inject_stuck_release()
        b.settle_safe(3.0)
        n = len(b.probe.log)
        b.await_verdict(self._send("DEPLOY_ARM", unit=unit), 2.0, n)
        if not b.host.alive:
            return
        b.crash_at_write(rng.randrange(1, 4))
        n = len(b.probe.log)
        b.await_verdict(self._send("DEPLOY_FIRE", unit=unit), 90.0, n)
        if b.host.alive:
            b.store.crash_after = None
            return
        STATS["kill_mid_fire"] += 1
        b.store.crash_after = None
        b.restart()
        STATS["watchdog_restarts"] += 1
        self._arm_fire_verdict(unit)
        if rng.random() < 0.5:
            m.clear_faults(b.now)

    def arm_clear_fire(self, unit: str) -> None:
        """ARM, clear the arm one way or another, then FIRE at once: the hardware is still armed (its relays
        close until the safing reaches it), so the arm-clearing rules alone must refuse the FIRE."""
        b, rng = self.b, self.rng
        other = UNITS[1 - UNITS.index(unit)]
        b.settle_safe(3.0)
        n = len(b.probe.log)
        arm = self._send("DEPLOY_ARM", unit=unit)
        b.await_verdict(arm, 2.0, n)
        how = rng.choice(CLEARINGS)
        STATS[f"clearing_{how}"] += 1
        if how == "disarm":
            self._send("DEPLOY_DISARM", unit=unit)
        elif how == "disarm_other":
            self._send("DEPLOY_DISARM", unit=other)
        elif how == "arm_other":
            self._send("DEPLOY_ARM", unit=other)
        elif how == "fire_other":
            self._send("DEPLOY_FIRE", unit=other)
        elif how == "override":
            self._send("DEPLOY_OVERRIDE", unit=rng.choice(UNITS), state=rng.choice(["STOWED", "RELEASED"]))
        elif how == "direct":
            role = rng.choice(DIRECT_HAZARDS)
            self._send(f"{unit}_{role}", unit, **({"actuator": "A"} if role == "FIRE" else {}))
        elif how == "phase":
            self._send("SET_PHASE", phase="DEPLOY")
        else:
            b.run(ARM_TIMEOUT_S + rng.choice([0.0, 0.01, 0.5]))
        b.run(rng.choice([0.0, 0.0, 0.005, 0.05]))
        self._send("DEPLOY_FIRE", unit=unit)

    @rule(dt=st.sampled_from([0.0, 0.05, 0.3, 1.0, 3.0, 8.0, 12.0, 25.0]))
    def wait(self, dt: float) -> None:
        self._step()
        self.b.run(dt)

    @rule(dt=st.sampled_from([1.0, 5.0, 12.0, 25.0]))
    def wait_longer(self, dt: float) -> None:
        self._step()
        self.b.run(dt)

    @rule(what=st.sampled_from(["restart", "kill0", "kill1", "kill2", "kill3"]))
    def process(self, what: str) -> None:
        """Restart the flight software, or arrange for the (k+1)-th durable write from now to kill it."""
        self._step()
        if what == "restart":
            self.b.store.crash_after = None
            self.b.restart()
            STATS["restarts"] += 1
        elif self.b.host.alive:
            self.b.crash_at_write(int(what[-1]))

    @rule(data=st.data())
    def fault(self, data: st.DataObject) -> None:
        self._step()
        b = self.b
        unit = data.draw(st.sampled_from(UNITS), label="unit")
        m = b.models[unit]
        kind = self.rng.choice(FAULTS)
        STATS[f"fault_{kind}"] += 1
        if kind == "open_circuit":
            m.inject_open_circuit(data.draw(st.sampled_from(["A", "B"]), label="actuator"), b.now)
        elif kind == "stuck_release":
            m.inject_stuck_release()
        elif kind == "failed_switch":
            # one failed switch per unit at most (the single-fault assumption of the two-switch design)
            if not self.failed_switch[unit]:
                self.failed_switch[unit] = True
                m.inject_failed_switch(data.draw(st.sampled_from([0, 1])), data.draw(st.sampled_from(["closed",
                                                                                                    "open"])), b.now)
        elif kind == "chatter":
            m.inject_chatter(data.draw(st.sampled_from([0, 1])), b.now, duration_s=0.08, half_period_s=0.003)
        elif kind in ("silent", "unsilent"):
            m.silent = kind == "silent"
        elif kind == "garbage":
            if b.host.alive:
                b.inject_bytes(unit.lower(), bytes(range(256)) + b"\x1a\xcf\xfc\x1d\x18\x30\xc0")
        elif kind == "pdu_trip":
            b.short_circuit(unit)
        elif kind == "repair":
            m.clear_faults(b.now)
            b.repair_pdu(unit)
        else:
            key = record_key(unit)
            if key in b.store.data:
                if data.draw(st.booleans(), label="delete"):
                    del b.store.data[key]
                else:
                    raw = bytearray(b.store.data[key])
                    raw[len(raw) // 2] ^= 0x5A
                    b.store.data[key] = bytes(raw)
                self.forgotten_before[unit] = b.now

    # -- the oracle ---------------------------------------------------------------------------------------
    def _boot_marks(self) -> None:
        """Boots and crashes clear every arm; a boot restores the durable phase."""
        host = self.b.host
        while self.boot_cursor < host.boots:
            self.boot_cursor += 1
            self.boots_seen.append((len(self.b.probe.log), self.b.now))
        while self.crash_cursor < len(host.crash_log):
            self.crash_cursor += 1
            STATS["crashes"] += 1
            recs = [load_record(self.b.store, record_key(u)) or {} for u in UNITS]
            if any(r.get("state") in ("FIRING", "RETRY") for r in recs):
                STATS["crashes_mid_sequence"] += 1
            self.boots_seen.append((len(self.b.probe.log), host.crash_log[self.crash_cursor - 1][0]))

    def _advance(self) -> None:
        b = self.b
        d = b.d
        log = b.probe.log
        marks = sorted(self.boots_seen)
        lander = d.lander.apid
        rej_evt = d.lander.event("DEPLOY_REJECTED")
        rel_evt = d.lander.event("DEPLOY_RELEASED")
        unk_evt = d.lander.event("DEPLOY_STATE_UNKNOWN")
        counted = {d.lander.event(n).id: n for n in ("DEPLOY_RETRY", "DEPLOY_FAILED", "DEPLOY_OVERRIDDEN",
                                                     "DEPLOY_ARM_CLEARED", "DEPLOY_FAULT")}
        while self.cursor < len(log):
            i = self.cursor
            # boots/crashes that happened before this entry was delivered clear the arms
            while marks and marks[0][0] <= i:
                marks.pop(0)
                self.armed = {u: None for u in UNITS}
                rec = load_record(b.store, "phase")
                self.phase = rec["phase"] if rec and "phase" in rec else self.phase
            self.cursor += 1
            t, tm = log[i]
            if tm.apid == lander and tm.service == 5 and len(tm.source_data) >= 2:
                eid = int.from_bytes(tm.source_data[:2], "big")
                if eid == rej_evt.id:
                    args = d.event_codec(rej_evt).decode(tm.source_data, 2)
                    self.rejected_events[(args["EVT_DEP_UNIT"], args["EVT_DEP_CODE"])] += 1
                elif eid == rel_evt.id:
                    args = d.event_codec(rel_evt).decode(tm.source_data, 2)
                    m = b.models[args["EVT_DEP_UNIT"]]
                    assert m.released_at is not None and m.released_at <= t, "RELEASED reported without a release"
                    STATS["releases_reported"] += 1
                elif eid == unk_evt.id:
                    STATS["unknown_states"] += 1
                    STATS["unknown_" + d.event_codec(unk_evt).decode(tm.source_data, 2)["EVT_DEP_REASON"]] += 1
                elif eid in counted:
                    STATS["events_" + counted[eid]] += 1
                continue
            if tm.service != 1 or len(tm.source_data) < 4:
                continue
            key = (int.from_bytes(tm.source_data[:2], "big"), int.from_bytes(tm.source_data[2:4], "big") & 0x3FFF)
            who = self.by_key.get(key)
            if who is None:
                continue  # not a ground TC (cannot happen: controller reports to the lander stay on board)
            name, unit, args = who
            sub = tm.subservice
            if sub in (1, 2):
                self.acceptances[(key, t)] += 1
                self._processed(name, unit, args, t, accepted=sub == 1)
                if sub == 2:
                    code = d.failure_name(int.from_bytes(tm.source_data[4:6], "big"))
                    STATS[f"rejected_{code}"] += 1
                    if name == "DEPLOY_FIRE":
                        STATS[f"fire_rejected_{code}"] += 1
                        if self.hw_armed.get((key[0], key[1], t)):
                            STATS[f"fire_rejected_{code}_with_hardware_armed"] += 1
                    if name in DEPLOY_CMDS or any(name == f"{u}_{r}" for u in UNITS for r in DIRECT_HAZARDS):
                        self.rejections[(unit, code)] += 1
            elif sub == 7:
                if name == "DEPLOY_ARM":
                    self.armed[unit] = t
                    STATS["arms_completed"] += 1
                elif name == "SET_PHASE":
                    self.phase = args["phase"]
                    self.armed = {u: None for u in UNITS}
                elif name == "DEPLOY_OVERRIDE":
                    self.overrides[unit] += 1
                elif name == "DEPLOY_FIRE":
                    STATS["fires_completed"] += 1
        # boots after the last entry
        for _ in marks:
            self.armed = {u: None for u in UNITS}
            rec = load_record(b.store, "phase")
            self.phase = rec["phase"] if rec and "phase" in rec else self.phase
        self.boots_seen = [m for m in self.boots_seen if m[0] > len(log)]

    def _processed(self, name: str, unit: str | None, args: dict, t: float, accepted: bool) -> None:
        """The flight software processed a ground TC (accepted or not): the arm-clearing rules."""
        if name == "DEPLOY_FIRE":
            for u in UNITS:
                if u != unit:
                    self.armed[u] = None
            if accepted:
                # invariant 1: a valid arm of the same unit; invariant 2: the phase allows it
                a = self.armed[unit]
                assert a is not None, f"FIRE {unit} accepted at {t} without a completed, uncleared ARM"
                assert t - a < ARM_TIMEOUT_S + 1e-6, f"FIRE {unit} accepted {t - a:.3f} s after its ARM"
                assert self.phase == "DEPLOY", f"FIRE accepted in phase {self.phase}"
                self.armed[unit] = None  # the FIRE uses the arm up
                self.accepted_fires[unit].append(t)
                STATS["fires_accepted"] += 1
        elif name in ("DEPLOY_ARM", "DEPLOY_OVERRIDE", "DEPLOY_DISARM") or \
                any(name == f"{u}_{r}" for u in UNITS for r in DIRECT_HAZARDS):
            self.armed = {u: None for u in UNITS}

    def _hardware(self) -> None:
        b = self.b
        for u in UNITS:
            m = b.models[u]
            log = m.fire_log
            while self.fire_cursor[u] < len(log):
                f = log[self.fire_cursor[u]]
                self.fire_cursor[u] += 1
                STATS["actuations"] += 1
                # invariant 1: it belongs to the latest FIRE ground saw accepted before it
                fires = [t for t in self.accepted_fires[u] if t < f.t]
                assert fires, f"{u} actuator {f.actuator} fired at {f.t} with no accepted FIRE before it"
                seq = len(fires) - 1
                acts = self.seq_actuations.setdefault((u, seq), [])
                acts.append(f.actuator)
                # invariant 3: one sequence fires A, then at most B
                assert acts == ["A", "B"][:len(acts)], f"{u} sequence {seq} fired {acts}"
                # invariant 2: the two relays (inhibits 1 and 2) were closed by the ARM
                assert f.bus_relay and f.arm_relay, f"{u} fired with an inhibit in place: {f}"
                if len(acts) == 1:
                    self._new_sequence(u, seq, f.t)
                else:
                    STATS["redundant_actuations"] += 1
                self.actuations[u].append(f.t)

    def _new_sequence(self, u: str, seq: int, t0: float) -> None:
        b = self.b
        m = b.models[u]
        self.sequences[u].add(seq)
        STATS["sequences"] += 1
        # invariant 3: never a new sequence once the unit is physically released ...
        assert m.released_at is None or m.released_at >= t0, f"{u} fired again after its release"
        # ... and at most one per unit, unless ground overrode the state in between
        assert len(self.sequences[u]) <= 1 + self.overrides[u], \
            f"{u}: {len(self.sequences[u])} fire sequences with {self.overrides[u]} overrides"
        # invariant 4: spacing from the other unit's actuations (those whose record was not destroyed since)
        for o in UNITS:
            if o == u:
                continue
            for t_other in self.actuations[o]:
                if t_other > self.forgotten_before[o]:
                    assert t0 - t_other >= SPACING_S - 0.1, f"{u} fired {t0 - t_other:.3f} s after {o}"

    def _one_outcome(self) -> None:
        """Invariant 5: a TC the flight software was alive to process got exactly one acceptance report.

        TCs to the lander are answered in the same instant (instant ground link).  A TC routed to a
        controller is either refused by the flight software at once, or answered by the controller
        over its line (or not at all, if it is silent): at most one report then.
        """
        now = self.b.now
        crashes = {t for t, _ in self.b.host.crash_log}
        lander = self.b.d.lander.apid
        while self.checked_sends < len(self.sends):
            key, t, alive, _ = self.sends[self.checked_sends]
            if t >= now - 1.0 and self.b.host.alive:
                break  # give routed TCs a second to be answered
            self.checked_sends += 1
            group = [s for s in self.sends if s[0] == key and s[1] == t]
            expect = sum(1 for s in group if s[2])
            if key[0] & 0x7FF == lander:
                n = self.acceptances[(key, t)]
                if t in crashes:
                    assert n <= expect
                else:
                    assert n == expect, f"TC {key} at {t}: {n} acceptance reports for {expect} deliveries"
            else:
                later = [s[1] for s in self.sends if s[0] == key and s[1] > t]
                until = min([t + 1.0] + later)  # a replay of the same TC is answered for itself
                n = sum(c for (k, ta), c in self.acceptances.items() if k == key and t <= ta < until)
                assert n <= len(group), f"routed TC {key} at {t}: {n} acceptance reports"
        for k, n in self.rejections.items():
            assert self.rejected_events[k] >= n, f"deploy rejection {k} without its DEPLOY_REJECTED event"

    @invariant()
    def oracle(self) -> None:
        self._boot_marks()
        self._advance()
        self._hardware()
        self._one_outcome()

    @invariant()
    def manager_is_consistent(self) -> None:
        if not self.b.host.alive:
            return
        dm = self.b.fsw.deploy
        states = [u.state for u in dm.units.values()]
        assert sum(s in ("ARMING", "ARMED") for s in states) <= 1, states
        assert sum(s in ("FIRING", "COOLDOWN") for s in states) <= 1, states
        if any(s in ("FIRING", "COOLDOWN") for s in states):
            assert not any(s in ("ARMING", "ARMED") for s in states), states
        for u in dm.units.values():
            if u.state == "ARMED":
                assert u.armed_until is not None and u.armed_until > self.b.now - 1e-9
            STATS[f"state_{u.state}"] += 1

    def teardown(self) -> None:
        STATS["released_units"] += sum(m.released_at is not None for m in self.b.models.values())
        STATS["sim_seconds"] += int(self.b.now - 1000.0)


def test_deploy_state_machine() -> None:
    STATS.clear()
    t0 = time.perf_counter()
    run_state_machine_as_test(DeployMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], print_blob=True))
    elapsed = time.perf_counter() - t0
    summary = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()))
    print(f"\ndeploy state machine: {elapsed:.1f} s: {summary}")
    # The run means something: enough steps, and it reached the places where each safety rule alone has to
    # decide (a change that stops the machine from getting there fails here, not silently).
    assert STATS["steps"] >= 3000, summary
    assert STATS["sequences"] >= 40 and STATS["releases_reported"] >= 20, summary
    assert STATS["redundant_actuations"] >= 5 and STATS["events_DEPLOY_FAILED"] >= 3, summary
    assert STATS["crashes"] >= 30 and STATS["crashes_mid_sequence"] >= 10 and STATS["restarts"] >= 50, summary
    assert STATS["unknown_RECORD_INTERRUPTED"] >= 5 and STATS["unknown_states"] >= 10, summary
    assert STATS["fire_rejected_NOT_ARMED_with_hardware_armed"] >= 10, summary
    assert STATS["fire_rejected_PHASE_FORBIDS"] >= 10 and STATS["rejected_SPACING"] >= 5, summary
    assert STATS["events_DEPLOY_OVERRIDDEN"] >= 10 and STATS["kill_mid_fire"] >= 20, summary
