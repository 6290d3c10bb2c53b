"""The reference mission (or any scenario) in simulated time, with its mission report.

Everything runs in one process on the simulated clock: the flight software,
every device model and a ground node, with the ground-to-lander line carried
by the relay link model (contact windows by phase, light time, rate caps).
The scenario drives the ground node; the report is built from what the ground
received, plus the link's own accounting of what it could not carry.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from fsw.core.flight import FlightSoftware
from fsw.core.schedule import encode_insert
from fsw.core.node import Node
from fsw.dictionary import Dictionary, load_dictionary
from fsw.protocol.pus import PusTc
from hw_sim.models.relay import DOWN, UP, RelayChannel, RelayLinkModel

from .node import PORT
from .scenario import Scenario, Step
from .simbench import SimBench


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

    @property
    def criteria(self) -> list[StepOutcome]:
        return [s for s in self.steps if s.step.criterion]

    @property
    def success(self) -> bool:
        return all(s.ok for s in self.criteria)

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario, "seed": self.seed, "start": self.start, "end": self.end,
            "success": self.success,
            "criteria": [{"name": s.step.criterion, "ok": s.ok, "detail": s.detail, "at": s.at} for s in self.criteria],
            "steps_failed": [{"step": s.step.index, "detail": s.detail} for s in self.steps if s.ok is False],
            "events_by_severity": self.events_by_severity, "notable_events": self.notable_events,
            "payloads": self.payloads, "deploy": self.deploy, "commands": self.commands, "link": self.link,
            "phases": [{"at": t, "phase": p} for t, p in self.phases],
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
                 relay: RelayLinkModel | None = None, impair_up: Any = None, impair_down: Any = None) -> None:
        self.scenario = scenario
        self.dictionary = dictionary or load_dictionary()
        self.seed = scenario.seed if seed is None else seed
        self.progress = progress or (lambda line: None)
        self.launch = self.dictionary.launch_time
        self.bench = SimBench(self.dictionary, self.seed, start=self.launch + scenario.start, phase="PRELAUNCH",
                              library=library, connect_ground=False)
        self.relay = relay or RelayLinkModel(phase=self.bench.fsw.phases.current.name)
        self.up: RelayChannel = self.relay.channel(UP, impair_up)
        self.down: RelayChannel = self.relay.channel(DOWN, impair_down)
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
    def _phase_changed(self, old: Any, new: Any, now: float) -> None:
        self.relay.set_phase(new.name)
        self.up.busy_until = self.down.busy_until = 0.0
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
        self._settle(final=True)
        return self.report()

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
        link_s = 2 * self.relay.one_way_delay(b.now) + self.up.backlog(b.now) + self.down.backlog(b.now)
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
        link = {
            "contact_s": round(self.contact.total(now), 1),
            "contact_fraction": round(self.contact.total(now) / max(1.0, now - self.launch - self.scenario.start), 4),
            "contact_changes": self.contact.changes,
            "tm_packets_received": g.counts.get("packets", 0),
            "tm_not_sent_no_contact": getattr(fsw.counters, "tm_unsent", 0),
            "downlink_writes_lost": sum(v for k, v in down.items() if k.startswith("lost")),
            "downlink_lost_by_reason": {k: v for k, v in down.items() if k.startswith("lost")},
            "uplink_writes_lost": sum(v for k, v in up.items() if k.startswith("lost")),
        }
        return MissionReport(self.scenario.name, self.seed, self.scenario.start, now - self.launch, list(self.outcomes), sev,
                             notable, payloads, deploy, commands, link, list(self.phases))


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
    lines.append(f"      telemetry not sent for lack of contact: {lk['tm_not_sent_no_contact']} packets; "
                 f"downlink writes lost: {lk['downlink_writes_lost']} {lk['downlink_lost_by_reason']}")
    lines.append("success criteria:")
    for s in r.criteria:
        lines.append(f"  [{'PASS' if s.ok else 'FAIL'}] {s.step.criterion}: {s.detail}")
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
                    "a scaled real-time rate, see `ground demo`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", metavar="FILE", default=None,
                   help="scenario YAML (default: the reference mission, fsw/missions/reference/scenario.yaml)")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the report")
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
                     progress=None if args.quiet else (lambda line: print(line, flush=True)))
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
