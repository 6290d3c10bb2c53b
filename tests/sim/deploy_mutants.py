"""Does the deploy state machine test catch real bugs?  Seed them and see (a tool, not a CI test).

Each mutant breaks one safety rule of the deploy manager (by patching
:class:`fsw.core.deploy.DeployManager`), then the rule-based state machine of
``test_deploy_state_machine.py`` runs with its CI settings.  A mutant that the
state machine does not catch is listed; the deterministic tests named next to
it must catch it instead.

    .venv/bin/python -m tests.sim.deploy_mutants          # about five minutes
    .venv/bin/python -m tests.sim.deploy_mutants arm      # only the mutants whose name contains "arm"

Last run (160 examples x 45 steps): 12 of 13 caught by the state machine; "ARM/FIRE ignore
'already released'" needs ground to override wrongly after a failed switch, which the random
runs rarely reach: ``test_deploy.py::test_a_wrong_override_does_not_lead_to_a_second_fire``
catches it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Callable

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import fsw.core.deploy as D
from tests.sim import test_deploy_state_machine as T

M = D.DeployManager
ORIG = {k: v for k, v in vars(M).items() if callable(v)}


def _fire_prereqs_with(**forced: bool) -> Callable:
    return lambda self, u, now: dataclasses.replace(ORIG["fire_prereqs"](self, u, now), **forced)


def _arm_prereqs_with(**forced: bool) -> Callable:
    return lambda self, u, now: dataclasses.replace(ORIG["arm_prereqs"](self, u, now), **forced)


def _no_clear(self, now, reason, keep=None):  # noqa: ANN001, ANN202
    if reason not in ("OTHER_HAZARD", "DISARM"):
        ORIG["_clear_all_arms"](self, now, reason, keep)


def _interrupted_is_safe(self, now):  # noqa: ANN001, ANN202
    ORIG["_start"](self, now)
    for u in self.units.values():
        if u.unknown_reason == "RECORD_INTERRUPTED":
            u.state = "SAFE"


def _send_before_write(self, u, actuator, n, now):  # noqa: ANN001, ANN202
    self._send(u, "FIRE", actuator=actuator)
    ORIG["_attempt"](self, u, actuator, n, now)


def _never_expires(self, u, now):  # noqa: ANN001, ANN202
    ORIG["_armed"](self, u, now)
    u.armed_until = now + 1e6
    if u.timer is not None:
        u.timer.cancel()
        u.timer = None


def _retries_forever(self, u, now, reason):  # noqa: ANN001, ANN202
    if u.state == "FIRING":
        u.attempt = 0
        ORIG["_attempt_over"](self, u, now, reason)


def _refire_on_boot(self, now):  # noqa: ANN001, ANN202
    ORIG["_start"](self, now)
    for u in self.units.values():
        if u.unknown_reason == "RECORD_INTERRUPTED":
            self._send(u, "BUS_ENABLE")
            self._send(u, "ARM")
            self._send(u, "FIRE", actuator="A")


def _one_switch(self, u, now):  # noqa: ANN001, ANN202
    tm = u.tm
    if u.state in ("FIRING", "COOLDOWN") and tm.at is not None and (tm.sw1_open or tm.sw2_open):
        u.tm = dataclasses.replace(tm, sw1_open=True, sw2_open=True)
    ORIG["evaluate"](self, u, now)


def _silent_refusal(self, u, cmd, decision, now):  # noqa: ANN001, ANN202
    from fsw.core.flight import CommandFailure
    raise CommandFailure(decision.code or "EXECUTION_FAILED", decision.mask, stage="accept")


def _unknown_arm(self, u, now):  # noqa: ANN001, ANN202
    p = ORIG["arm_prereqs"](self, u, now)
    return dataclasses.replace(p, state_known=True, unit_idle=p.unit_idle or (u.state == "UNKNOWN" and not u.safing))


MUTANTS: dict[str, list[tuple[str, Any]]] = {
    "FIRE ignores the arm": [("fire_prereqs", _fire_prereqs_with(armed=True))],
    "ARM and FIRE ignore the phase": [("fire_prereqs", _fire_prereqs_with(phase_allows=True)),
                                      ("arm_prereqs", _arm_prereqs_with(phase_allows=True))],
    "no spacing": [("_spacing_ok", lambda self, u, now: True)],
    "hazards and disarm do not clear the arm": [("_clear_all_arms", _no_clear)],
    "an interrupted record reads SAFE": [("_start", _interrupted_is_safe)],
    "FIRE sent before the durable write": [("_attempt", _send_before_write)],
    "the arm never expires": [("_armed", _never_expires)],
    "retries forever": [("_attempt_over", _retries_forever)],
    "a restart re-fires an interrupted unit": [("_start", _refire_on_boot)],
    "ARM/FIRE ignore 'already released'": [
        ("fire_prereqs", _fire_prereqs_with(not_done=True, switches_closed=True, no_fault=True)),
        ("arm_prereqs", _arm_prereqs_with(not_done=True, switches_closed=True, no_fault=True))],
    "one switch suffices for RELEASED": [("evaluate", _one_switch)],
    "a rejection without DEPLOY_REJECTED": [("_refuse", _silent_refusal)],
    "UNKNOWN does not block": [("fire_prereqs", _fire_prereqs_with(state_known=True)), ("arm_prereqs", _unknown_arm)],
}


def run_machine() -> str | None:
    """The state machine with its CI settings (no shrinking); the first violation, or None."""
    try:
        run_state_machine_as_test(T.DeployMachine, settings=settings(
            max_examples=T.EXAMPLES, stateful_step_count=T.STEPS, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck), phases=[Phase.generate], print_blob=False))
    except AssertionError as exc:
        return str(exc).splitlines()[0]
    return None


def main(argv: list[str]) -> int:
    want = argv[1] if len(argv) > 1 else ""
    missed = []
    for name, patches in MUTANTS.items():
        if want not in name:
            continue
        for attr, fn in patches:
            setattr(M, attr, fn)
        t = time.perf_counter()
        try:
            found = run_machine()
        finally:
            for attr, _ in patches:
                setattr(M, attr, ORIG[attr])
        verdict = f"caught: {found[:100]}" if found else "NOT CAUGHT"
        print(f"{name:42s} {verdict}  ({time.perf_counter() - t:.0f} s)", flush=True)
        if not found:
            missed.append(name)
    print(f"{len(missed)} not caught by the state machine" + (f": {', '.join(missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
