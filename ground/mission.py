"""The reference mission (or any scenario) in simulated time, with its mission report.

Everything runs in one process on the simulated clock: the flight software,
every device model and a ground node, with the ground-to-lander line carried
by the relay link model (contact windows by phase, light time, rate caps).
The scenario drives the ground node; the report is built from what the ground
received, plus the link's own accounting of what it could not carry.

By default the line carries the space link (docs/spacelink.md): TC frames
under COP-1 up, TM frames from the lander's packet stores down, with seeded
impairments on both directions (:data:`DEFAULT_IMPAIRMENTS`: bit errors,
bursty loss, reordering) on top of the relay's contact gaps.  After the
scenario's end the run goes on (at most ``drain_s``) until the stores have
delivered everything, and the report checks, per payload, that every science
packet produced on board reached the ground exactly once and that no
telecommand ran twice.  ``space_link=False`` keeps the old direct packet line.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from fsw.core.flight import FlightSoftware
from fsw.core.spacelink import SpaceLinkConfig
from fsw.core.storage import science_keys
from fsw.core.schedule import encode_insert
from fsw.core.node import Node
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc
from hw_sim.faults import GilbertElliott, LinkImpairer
from hw_sim.models.relay import DOWN, UP, RelayChannel, RelayLinkModel

def make_impairer(rng: random.Random, knobs: dict[str, Any]) -> LinkImpairer:
    """A LinkImpairer from plain knobs (``burst`` as (p, r): Gilbert-Elliott, loss 1 in the bad state)."""
    knobs = dict(knobs)
    burst = knobs.pop("burst", None)
    if burst is not None:
        knobs["burst"] = GilbertElliott(p=burst[0], r=burst[1])
    return LinkImpairer(rng, **knobs)

from .node import PORT
from .spacelink import GroundLinkConfig
from .scenario import Scenario, Step
from .simbench import SimBench


#: impairments of each direction of the space link in a mission run (besides the relay's gaps): a bit error
#: rate of 1e-5, about 1 % of frames lost in bursts (Gilbert-Elliott, mean burst 5 frames), 0.5 % reordered
DEFAULT_IMPAIRMENTS: dict[str, Any] = {"ber": 1e-5, "burst": (0.002, 0.2), "reorder": 0.005, "reorder_delay": 0.2}
#: how long the run may go on after the scenario's end for the packet stores to drain
DEFAULT_DRAIN_S = 6 * 3600.0
#: the ground's end of the space link in a mission run.  Every range acknowledged or asked for is one
#: telecommand (short ones share a TC frame), and with a frame lost every second or so on the fast surface
#: downlink every gap would also split an acknowledgement: so acknowledgement rounds run every 30 s, up to
#: 1024 ranges per interval, held back behind a gap for up to 2 min (one range then covers the lot once it is
#: filled), and each APID is acknowledged at most once per 2 min (``ack_batch_s`` follows ``ack_hold_s``: an
#: acknowledgement leaves at most 2.5 min after its packet, inside the lander's 5 min resend timeout); a gap
#: is asked for after 90 s (an APID whose science is still being played back shows "gaps" that are only
#: packets queued on board behind the live ones), two gaps of an APID a packet or two apart in one range.
MISSION_GROUND_LINK = GroundLinkConfig(ack_interval_s=30.0, gap_wait_s=90.0, request_retry_s=90.0,
                                       max_requests_per_interval=1024, reack_s=600.0, ack_hold_s=120.0)


class ContactController(Node):
    """Opens and closes the ground line at the relay model's acquisition and loss of signal."""

    def __init__(self, mission: "MissionRun") -> None:
        super().__init__("contact", [])
        self.mission = mission
        self.in_contact: bool | None = None
        self.contact_time = 0.0
        self._since: float | None = None
        self._timer = None
        self.changes = 0

    def start(self, now: float) -> None:
        self.update(now)

    def update(self, now: float) -> None:
        m = self.mission
        up = m.relay.in_contact(now)
        if up != self.in_contact:
            if self.in_contact and self._since is not None:
                self.contact_time += now - self._since
            self._since = now if up else None
            self.in_contact = up
            self.changes += 1
            m.bench.runner.set_line(m.bench.fsw, FlightSoftware.GROUND, up)
        if self._timer is not None:
            self._timer.cancel()
        nxt = m.relay.next_change(now)
        self._timer = self.timers.call_at(nxt + 1e-6, self.update) if math.isfinite(nxt) else None

    def total(self, now: float) -> float:
        return self.contact_time + (now - self._since if self.in_contact and self._since is not None else 0.0)


@dataclass
class StepOutcome:
    step: Step
    ok: bool | None = None          # None: still pending
    detail: str = ""
    at: float = 0.0


@dataclass
class MissionReport:
    scenario: str
    seed: int
    start: float
    end: float
    steps: list[StepOutcome] = field(default_factory=list)
    events_by_severity: dict[str, int] = field(default_factory=dict)
    notable_events: list[dict] = field(default_factory=list)
    payloads: dict[str, dict] = field(default_factory=dict)
    deploy: dict[str, dict] = field(default_factory=dict)
    commands: dict[str, int] = field(default_factory=dict)
    link: dict[str, Any] = field(default_factory=dict)
    phases: list[tuple[float, str]] = field(default_factory=list)
    #: per payload: science packets produced on board and received (unique) on the ground
    science: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the space link: COP-1, stores, discards, drain (empty with the direct packet line)
    space_link: dict[str, Any] = field(default_factory=dict)
    #: end-to-end checks: name -> (ok, detail)
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)

    @property
    def criteria(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.step.criterion]

    @property
    def success(self) -> bool:
        return all(s.ok for s in self.criteria) and all(ok for ok, _ in self.checks.values())

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario, "seed": self.seed, "start": self.start, "end": self.end,
            "success": self.success,
            "criteria": [{"name": s.step.criterion, "ok": s.ok, "detail": s.detail, "at": s.at} for s in self.criteria],
            "steps_failed": [{"step": s.step.index, "detail": s.detail} for s in self.steps if s.ok is False],
            "events_by_severity": self.events_by_severity, "notable_events": self.notable_events,
            "payloads": self.payloads, "deploy": self.deploy, "commands": self.commands, "link": self.link,
            "phases": [{"at": t, "phase": p} for t, p in self.phases],
            "science": self.science, "space_link": self.space_link,
            "checks": [{"name": k, "ok": ok, "detail": d} for k, (ok, d) in self.checks.items()],
        }


def _lplus(t: float) -> str:
    if t < 0:
        return "L-" + _lplus(-t)[2:]
    d, rem = divmod(t, 86400.0)
    h, rem = divmod(rem, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"L+{int(d)}d{int(h):02d}:{int(m):02d}:{int(s):02d}"


class MissionRun:
    """Run a scenario; ``progress(line)`` receives the progress log as it happens."""

    def __init__(self, scenario: Scenario, dictionary: Dictionary | None = None, seed: int | None = None,
                 progress: Callable[[str], None] | None = None, library: dict | None = None,
                 relay: RelayLinkModel | None = None, impair_up: Any = None, impair_down: Any = None,
                 space_link: bool | SpaceLinkConfig = True, impairments: dict[str, Any] | None = None,
                 drain_s: float = DEFAULT_DRAIN_S) -> None:
        """``space_link``: True (default) or a SpaceLinkConfig for the space link, False for the direct
        packet line.  ``impairments``: knobs of both directions (default :data:`DEFAULT_IMPAIRMENTS` with
        the space link, none without; ``{}`` for none); ``impair_up``/``impair_down`` replace them."""
        self.scenario = scenario
        self.dictionary = dictionary or load_dictionary()
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress or (lambda line: None)
        self.launch = self.dictionary.launch_time
        self.drain_s = drain_s
        self.relay = relay or RelayLinkModel(phase="PRELAUNCH")
        link_cfg: SpaceLinkConfig | None = None
        if space_link:
            # an idle frame carries the CLCW every 10 s at least (a changed CLCW still goes out within
            # clcw_prompt_s): a frame a second all mission long would cost millions of frames
            link_cfg = space_link if isinstance(space_link, SpaceLinkConfig) else SpaceLinkConfig(clcw_interval_s=10.0)
            link_cfg = replace(link_cfg, downlink_bps=self.relay.rate(DOWN) * 8.0 or link_cfg.downlink_bps)
        self.bench = SimBench(self.dictionary, self.seed, start=self.launch + scenario.start, phase="PRELAUNCH",
                              library=library, connect_ground=False, space_link=link_cfg,
                              ground_link=MISSION_GROUND_LINK)
        # a report lost on the downlink comes again when the ground asks for the gap (seen at the APID's next
        # packet: a heartbeat a minute in cruise): verification windows allow for that, a request and a retry
        g = MISSION_GROUND_LINK
        self.retransmit_allowance = (120.0 + g.gap_wait_s + g.ack_interval_s + g.request_retry_s + 30.0
                                     if link_cfg is not None else 0.0)
        self.relay.set_phase(self.bench.fsw.phases.current.name)
        knobs = (DEFAULT_IMPAIRMENTS if link_cfg is not None else {}) if impairments is None else impairments
        rng = random.Random(self.seed)   # one seed: the scenario's; each direction gets its own stream
        if impair_up is None and knobs:
            impair_up = make_impairer(random.Random(rng.random()), knobs)
        if impair_down is None and knobs:
            impair_down = make_impairer(random.Random(rng.random()), knobs)
        self.impairments = dict(knobs)
        self.impair_up, self.impair_down = impair_up, impair_down
        self.up: RelayChannel = self.relay.channel(UP, impair_up)
        self.down: RelayChannel = self.relay.channel(DOWN, impair_down)
        self._science = science_keys(self.dictionary)
        self.science_produced: Counter[str] = Counter()
        self.bench.fsw.add_tm_listener(self._unit_tm)
        self.drained_at: float | None = None
        self.bench.runner.connect(self.bench.ground, PORT, self.bench.fsw, FlightSoftware.GROUND, baud=None,
                                  impair_ab=self.up, impair_ba=self.down)
        self.contact = ContactController(self)
        self.bench.runner.add(self.contact)
        self.phases: list[tuple[float, str]] = [(scenario.start, self.bench.fsw.phases.current.name)]
        self.bench.fsw.phases.on_change(self._phase_changed)
        self.last_by_unit: dict[str, dict[str, dict]] = defaultdict(dict)
        self.bench.ground.on_record(self._record)
        self.outcomes: list[StepOutcome] = []
        self._pending: list[tuple[StepOutcome, PusTc]] = []

    # -- observers ---------------------------------------------------------------------------------
    def _unit_tm(self, unit: Any, tm: Any, now: float) -> None:
        """Every packet a payload hands the flight software: count its science (produced on board)."""
        name = self._science.get((tm.apid, tm.service, tm.subservice))
        if name is not None:
            self.science_produced[name] += 1

    def _phase_changed(self, old: Any, new: Any, now: float) -> None:
        self.relay.set_phase(new.name)
        self.up.busy_until = self.down.busy_until = 0.0
        link = self.bench.fsw.spacelink
        if link is not None and self.relay.rate(DOWN) > 0:
            # the radio's data rate goes with the phase's link (as the radio is configured for it)
            link.link.set_downlink_rate(self.relay.rate(DOWN) * 8.0)
        self.contact.update(now)
        self.phases.append((now - self.launch, new.name))
        self.progress(f"{_lplus(now - self.launch)}  phase {old.name} -> {new.name}")

    def _record(self, rec: dict) -> None:
        name = rec.get("name")
        params = rec.get("params") or {}
        if name == "PAYLOAD_HK" and "PL_UNIT" in params:
            self.last_by_unit["payload"][params["PL_UNIT"]] = params
        elif name == "DEPLOY_HK":
            unit = params.get("DEP_UNIT")
            if unit is not None:
                self.last_by_unit["deploy"][str(unit)] = params
        sev = rec.get("severity")
        if rec.get("event") and sev in ("MEDIUM", "HIGH"):
            t = rec.get("time", 0.0) - self.launch
            self.progress(f"{_lplus(t)}  {sev:<6} {rec.get('system')}.{rec['event']} {rec.get('params') or ''}")

    # -- running -----------------------------------------------------------------------------------
    def run(self) -> MissionReport:
        b = self.bench
        self.progress(f"{_lplus(0)}  {self.scenario.name}: {len(self.scenario.steps)} steps to "
                      f"{_lplus(self.scenario.end)} (seed {self.seed})")
        for step in self.scenario.steps:
            b.run_until(self.launch + step.at)
            self._settle()
            self._do(step)
        b.run_until(self.launch + self.scenario.end)
        self._drain()
        self._settle(final=True)
        return self.report()

    def _delivered(self) -> bool:
        """Every science packet produced on board has reached the ground (what the stores still hold then
        is only waiting for an acknowledgement, and the report shows it)."""
        return self.bench.ground.science_received == self.science_produced

    def _drain(self) -> None:
        """After the end: run on (at most ``drain_s``) until the stores have delivered all the science."""
        b = self.bench
        end = b.now
        if b.fsw.spacelink is None or self._delivered():
            self.drained_at = end if self._delivered() else None
            return
        self.progress(f"{_lplus(end - self.launch)}  end of the scenario: running on until the packet stores "
                      f"have delivered everything (at most {self.drain_s / 3600:g} h)")
        b.run_until(end + self.drain_s, self._delivered)
        if self._delivered():
            self.drained_at = b.now
            self.progress(f"{_lplus(b.now - self.launch)}  stores drained after {(b.now - end) / 60:.1f} min")
        else:
            self.progress(f"{_lplus(b.now - self.launch)}  stores NOT drained after {self.drain_s / 3600:g} h")

    def _do(self, step: Step) -> None:
        b = self.bench
        out = StepOutcome(step, at=b.now - self.launch)
        self.outcomes.append(out)
        if step.kind == "note":
            out.ok = True
            self.progress(f"{_lplus(out.at)}  -- {step.text}")
            return
        if step.kind == "wait":
            cond = step.condition
            assert cond is not None
            held = b.wait_for(lambda g: cond.holds(g.value(cond.param)), step.timeout)
            out.ok = held
            out.detail = f"{cond} {'held' if held else 'not reached within %gs' % step.timeout}" + \
                (f" (last {cond.param}={b.value(cond.param)!r})" if not held else "")
            if step.criterion:
                self.progress(f"{_lplus(b.now - self.launch)}  {'PASS' if held else 'FAIL'} {step.criterion}: {out.detail}")
            return
        args = " ".join(f"{k}={v}" for k, v in step.args.items())
        if not self.contact.in_contact:
            # operators uplink at acquisition of signal: wait for the next contact window (a day at most)
            nxt = self.relay.next_change(b.now)
            if nxt - b.now < 86400.0:
                self.progress(f"{_lplus(out.at)}  waiting for acquisition of signal to send {step.command}")
                b.run_until(nxt + 5.0, lambda: bool(self.contact.in_contact))
                b.run_for(5.0)  # margin after AOS for the light time
                out.at = b.now - self.launch
        # verification windows include the round-trip light time and what is queued on the link ahead
        link_s = (2 * self.relay.one_way_delay(b.now) + self.up.backlog(b.now) + self.down.backlog(b.now)
                  + self.retransmit_allowance)
        try:
            if step.kind == "schedule":
                assert step.release is not None
                release = self.launch + step.release
                # the link at release time is not known now: allow a minute for light time and queues
                inner = b.ground.prepare(step.command or "", b.now, release + link_s + 60.0, step.system,
                                         step.confirm, step.args)
                outer = b.ground.send_raw("SCHED_INSERT", encode_insert([(release, inner)]), b.now,
                                          timeout=b.dictionary.command("SCHED_INSERT").timeout_s + link_s)
                insert = StepOutcome(Step(step.index, step.at, "send", command="SCHED_INSERT"), at=out.at)
                self.outcomes.append(insert)
                self._pending.append((insert, outer))
                self._pending.append((out, inner))
                self.progress(f"{_lplus(out.at)}  schedule {step.command} {args} for {_lplus(step.release)}")
                return
            tc = b.submit(step.command or "", step.system, step.confirm, step.timeout + link_s, **step.args)
        except (KeyError, ValueError) as exc:
            out.ok = False
            out.detail = f"not sent: {exc}"
            return
        self._pending.append((out, tc))
        self.progress(f"{_lplus(out.at)}  send {step.command} {args}".rstrip())

    def _settle(self, final: bool = False) -> None:
        still = []
        for out, tc in self._pending:
            st = self.bench.ground.status(tc)
            if out.step.expect == "none":
                out.ok = True
                out.detail = f"{out.step.command}: not verified from the ground (no link expected)"
                continue
            if st is None or not st.done:
                if final:
                    out.ok = False
                    out.detail = "no verification by the end of the mission"
                else:
                    still.append((out, tc))
                continue
            want = out.step.expect
            if want == "none":
                out.ok = True
            elif want == "ok":
                out.ok = st.ok
            elif want == "fail":
                out.ok = st.state == "FAILED"
            else:
                out.ok = st.failure == want
            out.detail = f"{out.step.command}: {st.state}" + (f" ({st.failure})" if st.failure else "")
            if out.step.criterion or not out.ok:
                tag = "PASS" if out.ok else "FAIL"
                name = out.step.criterion or f"step {out.step.index}"
                self.progress(f"{_lplus(out.at)}  {tag} {name}: {out.detail} (expected {want})")
        self._pending = still

    # -- report ------------------------------------------------------------------------------------
    def report(self) -> MissionReport:
        b = self.bench
        g = b.ground
        now = b.now
        sev = {k[len("event_"):]: v for k, v in g.counts.items() if k.startswith("event_")}
        notable = [{"t": _lplus(e.get("time", 0.0) - self.launch), "severity": e.get("severity"),
                    "event": f"{e.get('system')}.{e.get('event')}", "params": e.get("params")}
                   for e in g.events if e.get("severity") in ("MEDIUM", "HIGH")]
        payloads = {}
        for unit, p in sorted(self.last_by_unit["payload"].items()):
            payloads[unit] = {k: p.get(k) for k in ("PL_STATE", "PL_ENERGY", "PL_BYTES", "PL_SCI_BYTES",
                                                     "PL_PACKETS", "PL_DROPS", "PL_ON_TIME", "PL_HB_FAILS")
                              if k in p}
        deploy = {u: dict(p) for u, p in sorted(self.last_by_unit["deploy"].items())}
        fsw = b.fsw
        commands = {"sent": g.counts.get("tc_sent", 0), "time_tagged": g.counts.get("tc_scheduled", 0),
                    "verified_ok": g.counts.get("tc_ok", 0),
                    "failed": g.counts.get("tc_failed", 0), "timed_out": g.counts.get("tc_timeout", 0),
                    "onboard_accepted": fsw.counters.tc_accepted, "onboard_rejected": fsw.counters.tc_rejected}
        down, up = self.down.stats, self.up.stats
        sl = fsw.spacelink
        link = {
            "mode": "space link" if sl is not None else "packet line",
            "contact_s": round(self.contact.total(now), 1),
            "contact_fraction": round(self.contact.total(now) / max(1.0, now - self.launch - self.scenario.start), 4),
            "contact_changes": self.contact.changes,
            "tm_packets_received": g.counts.get("packets", 0),
            # with the space link, what is produced out of contact is stored and sent later, not lost
            "tm_produced_no_contact": getattr(fsw.counters, "tm_unsent", 0),
            "tm_not_sent_no_contact": getattr(fsw.counters, "tm_unsent", 0) if sl is None else 0,
            "downlink_writes_lost": sum(v for k, v in down.items() if k.startswith("lost")),
            "downlink_lost_by_reason": {k: v for k, v in down.items() if k.startswith("lost")},
            "uplink_writes_lost": sum(v for k, v in up.items() if k.startswith("lost")),
            "impairments": {k: list(v) if isinstance(v, tuple) else v for k, v in self.impairments.items()},
            "impaired": {d: {k: v for k, v in imp.stats.items() if k != "bytes"}
                         for d, imp in ((UP, self.impair_up), (DOWN, self.impair_down))
                         if isinstance(imp, LinkImpairer)},
        }
        units = sorted(set(self.science_produced) | set(g.science_received))
        science = {u: {"produced": self.science_produced[u], "received": g.science_received[u]} for u in units}
        lost = {u: v["produced"] - v["received"] for u, v in science.items() if v["produced"] != v["received"]}
        checks = {"zero science lost": (not lost, "produced == received for every payload" if not lost
                                        else f"produced - received: {lost}")}
        space: dict[str, Any] = {}
        if sl is not None:
            onboard = sl.status()
            twice = onboard["tcs_executed_twice"]
            checks["zero TCs executed twice"] = (
                twice == 0, f"{onboard['tcs_executed']} telecommands executed on board, {twice} of them twice"
                + (f" (last: apid, seq, source = {sl.ledger.last_duplicate})" if twice else ""))
            ground_link = g.link_status()
            space = {
                "drained_at": None if self.drained_at is None else _lplus(self.drained_at - self.launch),
                "drain_s": None if self.drained_at is None else round(self.drained_at - self.launch - self.scenario.end, 1),
                "tcs_executed_onboard": onboard["tcs_executed"], "tcs_executed_twice": twice,
                "cop1": ground_link["cop"], "fop_state": ground_link["fop_state"], "farm_state": onboard["farm_state"],
                "stores_at_end": onboard["stores"],
                "stores_reported": ground_link["stores"],
                "tc_frames_discarded_onboard": onboard["frames_discarded"],
                "tm_frames_discarded_ground": ground_link["downlink_discarded"],
                "tracker": ground_link["tracker"], "store_requests": ground_link["store_requests"],
                "store_counters": {s.cfg.name: {k: v for k, v in s.counters.items() if v}
                                   for s in sl.storage.stores.values()},
            }
        return MissionReport(self.scenario.name, self.seed, self.scenario.start, now - self.launch, list(self.outcomes), sev,
                             notable, payloads, deploy, commands, link, list(self.phases), science, space, checks)


def format_report(r: MissionReport) -> str:
    """The mission report as text."""
    lines = [f"== Mission report: {r.scenario} (seed {r.seed}), {_lplus(r.start)} to {_lplus(r.end)} =="]
    lines.append("phases: " + ", ".join(f"{p} at {_lplus(t)}" for t, p in r.phases))
    lines.append("events by severity: " + (", ".join(f"{k} {v}" for k, v in sorted(r.events_by_severity.items()))
                                           or "none"))
    for e in r.notable_events[:20]:
        lines.append(f"  {e['t']}  {e['severity']:<6} {e['event']} {e['params'] or ''}")
    if len(r.notable_events) > 20:
        lines.append(f"  ... {len(r.notable_events) - 20} more")
    lines.append("payloads:")
    for unit, p in r.payloads.items():
        on = p.get("PL_ON_TIME")
        lines.append(f"  {unit:<7} state {p.get('PL_STATE')!s:<8}"
                     + (f" on {on / 3600:8.2f} h" if isinstance(on, (int, float)) else "")
                     + f" energy {float(p.get('PL_ENERGY') or 0):9.2f} Wh"
                     + f" data {int(p.get('PL_BYTES') or 0) / 1e6:9.3f} MB"
                     + f" (science {int(p.get('PL_SCI_BYTES') or 0) / 1e6:.3f} MB)")
    lines.append("deploy units:")
    for unit, p in r.deploy.items():
        keys = [k for k in p if any(w in k for w in ("STATE", "ATTEMPT", "RELEASE"))]
        lines.append(f"  {unit:<7} " + " ".join(f"{k}={p[k]}" for k in keys))
    c = r.commands
    lines.append(f"commands: {c['sent']} sent (and {c['time_tagged']} time-tagged inside them), "
                 f"{c['verified_ok']} verified OK, {c['failed']} failed, "
                 f"{c['timed_out']} timed out (on board: {c['onboard_accepted']} accepted, "
                 f"{c['onboard_rejected']} rejected)")
    lk = r.link
    lines.append(f"link: contact {lk['contact_s'] / 3600:.1f} h ({lk['contact_fraction'] * 100:.1f}% of the mission), "
                 f"{lk['contact_changes']} contact changes, {lk['tm_packets_received']} packets received")
    if r.space_link:
        lines.append(f"      telemetry produced out of contact: {lk['tm_produced_no_contact']} packets, stored and "
                     f"forwarded later; downlink writes lost: {lk['downlink_writes_lost']} {lk['downlink_lost_by_reason']}")
        lines.append(f"      impairments: {lk['impairments'] or 'none'}; applied: {lk['impaired']}")
    else:
        lines.append(f"      telemetry not sent for lack of contact: {lk['tm_not_sent_no_contact']} packets; "
                     f"downlink writes lost: {lk['downlink_writes_lost']} {lk['downlink_lost_by_reason']}")
    lines.append("science packets (produced on board / received on the ground, each once):")
    for unit, v in r.science.items():
        lines.append(f"  {unit:<7} {v['produced']:>9} / {v['received']:<9}"
                     + ("" if v["produced"] == v["received"] else f"  MISSING {v['produced'] - v['received']}"))
    sl = r.space_link
    if sl:
        c = sl["cop1"]
        lines.append(f"space link: {sl['tcs_executed_onboard']} telecommands executed on board, "
                     f"{sl['tcs_executed_twice']} twice; COP-1: {c['tcs_submitted']} submitted, {c['delivered']} "
                     f"delivered, {c['indeterminate']} indeterminate, {c['pending']} pending, "
                     f"{c.get('fop_retransmissions', 0)} frames retransmitted, {c['recoveries']} recoveries, "
                     f"alerts {c['alerts'] or 'none'}; FOP-1 {sl['fop_state']}, FARM-1 {sl['farm_state']}")
        lines.append(f"      store requests: {sl['store_requests']}; tracker: {sl['tracker']}")
        lines.append(f"      frames discarded: TC on board {sl['tc_frames_discarded_onboard']}, "
                     f"TM on the ground {sl['tm_frames_discarded_ground'] or 'none'}")
        lines.append("      stores at the end: " + ", ".join(
            f"{n} {v['packets']} packets ({v['fill'] * 100:.3f}%)" for n, v in sl["stores_at_end"].items()))
        lines.append("      drained: " + (f"at {sl['drained_at']} ({sl['drain_s'] / 60:.1f} min after the end)"
                                          if sl["drained_at"] else "NO (science still on board)"))
    lines.append("success criteria:")
    for s in r.criteria:
        lines.append(f"  [{'PASS' if s.ok else 'FAIL'}] {s.step.criterion}: {s.detail}")
    for name, (ok, detail) in r.checks.items():
        lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    failed = [s for s in r.steps if s.ok is False and not s.step.criterion]
    if failed:
        lines.append("other steps that did not go as expected:")
        for s in failed:
            lines.append(f"  step {s.step.index} at {_lplus(s.at)}: {s.detail}")
    lines.append(f"RESULT: {'SUCCESS' if r.success else 'FAILURE'}")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------------------
def add_mission_parser(subparsers: Any) -> None:
    import argparse

    p = subparsers.add_parser(
        "mission", help="run the reference mission (or a scenario) in simulated time and print its report",
        description="Run a mission scenario in simulated time: the flight software, every simulated unit and "
                    "a ground station in one process, the ground line carried by the relay link model. "
                    "Prints progress (phase, mission time, notable events) and the mission report; exits 1 "
                    "if a success criterion fails. For the same kind of run over real pseudo-terminals at "
                    "a scaled real-time rate, see `ground demo`.\n\n"
                    "By default the line carries the space link (TC frames with COP-1 up, TM frames from the "
                    "packet stores down) with seeded impairments, and the report checks that every science "
                    "packet produced on board reached the ground exactly once and that no telecommand ran "
                    "twice; either failing also exits 1.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", metavar="FILE", default=None,
                   help="scenario YAML (default: the reference mission, fsw/missions/reference/scenario.yaml)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the report")
    p.add_argument("--packet-link", action="store_true",
                   help="carry ASM-framed packets directly over the relay model (the old path: no TC/TM frames, "
                        "no COP-1, no packet stores, telemetry out of contact is lost); default: the space link")
    p.add_argument("--no-impairments", action="store_true",
                   help="no bit errors, bursty loss or reordering on the space link (the relay's gaps, light "
                        "time and rate caps remain); default: bit error rate 1e-5, about 1%% of frames lost in "
                        "bursts (Gilbert-Elliott), 0.5%% reordered, seeded from the scenario seed")
    p.add_argument("--drain", type=float, default=DEFAULT_DRAIN_S / 3600.0, metavar="HOURS",
                   help="after the scenario ends, run on at most this long until the packet stores have "
                        "delivered all science (default %(default)g h)")
    p.set_defaults(handler=cmd_mission)


def cmd_mission(args: Any) -> int:
    import json
    import sys
    import time
    from importlib import resources
    from pathlib import Path

    from .scenario import ScenarioError, parse_scenario

    d = load_dictionary(getattr(args, "dictionary", None))
    try:
        if args.scenario:
            text, name = Path(args.scenario).read_text(encoding="utf-8"), args.scenario
        else:
            text = (resources.files("fsw.missions") / "reference" / "scenario.yaml").read_text(encoding="utf-8")
            name = "scenario.yaml"
        scenario = parse_scenario(text, d, name)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ground: cannot read the scenario: {exc}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"ground: {exc}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    run = MissionRun(scenario, d, seed=args.seed,
                     progress=None if args.quiet else (lambda line: print(line, flush=True)),
                     space_link=not args.packet_link, impairments={} if args.no_impairments else None,
                     drain_s=max(0.0, args.drain) * 3600.0)
    report = run.run()
    wall = time.monotonic() - t0
    print(format_report(report))
    span = report.end - report.start
    print(f"simulated {span / 86400:.2f} days in {wall:.1f} s of wall time ({span / max(wall, 1e-9):,.0f}x real time)")
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({**report.to_dict(), "wall_s": wall}, indent=2, default=str))
        except OSError as exc:
            print(f"ground: cannot write {args.json}: {exc}", file=sys.stderr)
            return 2
    return 0 if report.success else 1
