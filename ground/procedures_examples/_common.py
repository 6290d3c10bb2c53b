"""Helpers shared by the example procedures (reference mission names: SET_PHASE, PAYLOAD_HK ...)."""

from __future__ import annotations

from typing import Any

from ground.procedures import Procedure

#: the phase the checkouts run in: integration and test before launch, where every payload mode is allowed
#: and the lander's housekeeping (PAYLOAD_HK, POWER_HK ...) comes every second (mission.yaml, ``phases``)
CHECKOUT_PHASE = "PRELAUNCH"


def ensure_phase(proc: Procedure, phase: str, timeout: float = 15.0) -> None:
    """Put the lander in mission phase ``phase`` (SET_PHASE) unless it already is."""
    current = proc.value("PHASE")
    if current is None:
        current = proc.wait_tm("PHASE", timeout=timeout, since="now")
    if current != phase:
        proc.step(f"mission phase {current} -> {phase}")
        proc.send_and_assert("SET_PHASE", phase=phase)


def payload_state(proc: Procedure, unit: str, timeout: float = 5.0) -> Any:
    """The payload manager's life-cycle state of ``unit`` (PAYLOAD_HK), waiting for a sample if none came yet."""
    state = proc.value("PL_STATE", where={"PL_UNIT": unit})
    if state is None:
        state = proc.wait_tm("PL_STATE", where={"PL_UNIT": unit}, timeout=timeout, since="now")
    return state


def power_on(proc: Procedure, unit: str) -> None:
    """Switch ``unit`` on from OFF (clearing a SAFE/FAULT latch, or switching it off first if it is on)."""
    state = payload_state(proc, unit)
    if state in ("SAFE", "FAULT"):
        proc.send_and_assert("PAYLOAD_RESET", unit=unit)
    elif state != "OFF":
        power_off(proc, unit)
    if proc.value("POWER_PDU_STALE") is not False:
        # until the PDU's housekeeping is in, the budget counts unknown channels as on: wait for it
        proc.wait_tm("POWER_PDU_STALE", "==", False, timeout=5, since="now")
    proc.step(f"power on {unit}")
    # completes when the payload is first heard after booting (boot_time_s of its dictionary entry)
    proc.send_and_assert("PAYLOAD_POWER_ON", unit=unit)


def power_off(proc: Procedure, unit: str) -> None:
    """Switch ``unit``'s main channel off."""
    proc.step(f"power off {unit}")
    proc.send_and_assert("PAYLOAD_POWER_OFF", unit=unit)   # completes when the PDU confirms


def science(proc: Procedure, packet: str, timeout: float = 5.0, **where: Any) -> dict:
    """The next science packet ``packet`` received (a decoded record), optionally with matching parameters."""
    def match(rec: dict) -> bool:
        return rec.get("name") == packet and all(rec["params"].get(k) == v for k, v in where.items())
    match.__name__ = packet
    return proc.wait_tm(match, timeout=timeout, since="now")
