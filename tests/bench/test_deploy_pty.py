"""Releasing Alpine with real timing over real pseudo-terminals: hw-sim and fsw as separate processes.

The flight software starts in the DEPLOY phase on a state directory
provisioned as at integration (:func:`fsw.core.deploy.provision`: each deploy
unit recorded stowed and never fired; a fresh, unprovisioned directory reads
UNKNOWN and blocks firing until a ground override).  Ground arms, fires, and
follows the separation to RELEASED.  Then the same with the primary actuator
stuck (``hw-sim --fault ALPINE=open_circuit:A``: no current flows in it, so
nothing separates): the deploy manager waits out the separation time and the
cool-down, fires the redundant actuator B, and the satellite is released.
Timing is measured on the packets' own time stamps (the flight software's
clock) and checked against Alpine's configuration in the dictionary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fsw.core.deploy import DeployOptions, provision, record_key, validate_record
from fsw.core.state import load_record
from fsw.io.state import FileStore
from ground.procedures import LinkBackend, Procedure

from .bench_procs import running_bench

pytestmark = pytest.mark.bench

UNIT = "ALPINE"
CONFIRM = UNIT   # a hazardous command is confirmed with the unit it acts on (DEPLOY_FIRE unit=ALPINE: ALPINE)


def provisioned_run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    store = FileStore(run_dir / "state")
    assert provision(store, ["ALPINE", "LUPINE"]) == ["ALPINE", "LUPINE"]
    return run_dir


def deploy_row(proc: Procedure, timeout: float = 5.0, since: object = "now", **want: object) -> dict:
    def match(rec: dict) -> bool:
        p = rec["params"]
        return rec["name"] == "DEPLOY_HK" and p["DEP_UNIT"] == UNIT and all(p[k] == v for k, v in want.items())
    match.__name__ = "DEPLOY_HK " + " ".join(f"{k}={v}" for k, v in want.items())
    return proc.wait_tm(match, timeout=timeout, since=since)["params"]


def arm_and_fire(proc: Procedure, fire_timeout: float) -> tuple[dict, object]:
    """ARM then FIRE Alpine; returns (the ARMED housekeeping row, the FIRE's verification)."""
    cfg = proc.dictionary.system(UNIT).config
    proc.step("Alpine stowed and safe")
    row = deploy_row(proc, DEP_HW_SAFE=True, since="start")
    assert row["DEP_STATE"] == "SAFE" and not row["DEP_SW1_OPEN"] and not row["DEP_SW2_OPEN"], row
    proc.step("ARM")
    arm = proc.send_and_assert("DEPLOY_ARM", unit=UNIT, confirm=CONFIRM)
    assert arm.reports[-1].received - arm.sent_at < DeployOptions().arming_timeout_s
    armed = proc.wait_event("DEPLOY_ARMED", EVT_DEP_UNIT=UNIT, timeout=2)
    assert armed["params"]["EVT_DEP_WINDOW"] == DeployOptions().arm_timeout_s
    row = deploy_row(proc, DEP_STATE="ARMED")
    assert row["DEP_BUS_RELAY"] and row["DEP_ARM_RELAY"] and not row["DEP_FIRE_SW"] and row["DEP_PDU_ON"], row
    proc.step("FIRE")
    fire = proc.send("DEPLOY_FIRE", unit=UNIT, confirm=CONFIRM, timeout=fire_timeout)
    assert cfg["actuators"]["A"]["type"] == "split_spool"
    return row, fire


def check_released(proc: Procedure, actuator: str, attempts: int) -> dict:
    expected_ms = proc.dictionary.system(UNIT).config["separation"]["expected_s"] * 1000
    rel = proc.wait_event("DEPLOY_RELEASED", EVT_DEP_UNIT=UNIT, timeout=2)
    assert rel["params"]["EVT_DEP_ACTUATOR"] == actuator and rel["params"]["EVT_DEP_ATTEMPT"] == attempts
    assert 0 < rel["params"]["EVT_DEP_SEP_MS"] < expected_ms
    proc.wait_event("ALPINE_SEPARATED", timeout=2)
    proc.wait_event("DEPLOY_SAFED", EVT_DEP_UNIT=UNIT, timeout=5)
    row = deploy_row(proc, DEP_STATE="RELEASED", DEP_HW_SAFE=True)
    assert row["DEP_SW1_OPEN"] and row["DEP_SW2_OPEN"] and not row["DEP_PDU_ON"], row
    assert not (row["DEP_BUS_RELAY"] or row["DEP_ARM_RELAY"] or row["DEP_FIRE_SW"]), row
    assert row["DEP_ATTEMPTS"] == attempts and row["DEP_ACTUATOR"] == actuator
    assert row["DEP_FIRED_AT"] <= row["DEP_RELEASED_AT"]
    # never re-fire
    proc.expect_failure("DEPLOY_FIRE", "ALREADY_DONE", stage="acceptance", unit=UNIT, confirm=CONFIRM)
    return rel


def durable_record(run_dir: Path) -> dict | None:
    return validate_record(load_record(FileStore(run_dir / "state"), record_key(UNIT)), UNIT)


def test_arm_fire_separation_released(tmp_path: Path) -> None:
    run_dir = provisioned_run_dir(tmp_path)
    with running_bench(run_dir, phase="DEPLOY") as bench:
        backend = LinkBackend.connect(bench.ground_link)
        lines: list[str] = []
        try:
            proc = Procedure(backend, log=lines.append)
            _, fire = arm_and_fire(proc, fire_timeout=10)
            assert fire.ok, fire
            assert [r.stage for r in fire.reports] == ["acceptance", "start", "progress", "completion"]
            firing = proc.wait_event("DEPLOY_FIRING", EVT_DEP_UNIT=UNIT, timeout=1)
            assert firing["params"]["EVT_DEP_ACTUATOR"] == "A" and firing["params"]["EVT_DEP_ATTEMPT"] == 1
            rel = check_released(proc, "A", 1)
            # real timing, on the flight software's clock: released within the expected separation time
            sep_s = proc.dictionary.system(UNIT).config["separation"]["expected_s"]
            assert 0 < rel["time"] - firing["time"] < sep_s
            assert fire.reports[-1].received - fire.sent_at < sep_s + 1.0
            assert not proc.events("DEPLOY_RETRY", since="start") and not proc.events("DEPLOY_FAILED", since="start")
        finally:
            backend.close()
            print("\n".join(lines))
    rec = durable_record(run_dir)
    assert rec is not None and rec["state"] == "RELEASED" and rec["attempts"] == 1 and rec["actuator"] == "A"


def test_stuck_primary_is_recovered_on_the_redundant_actuator(tmp_path: Path) -> None:
    run_dir = provisioned_run_dir(tmp_path)
    cfg_opts = DeployOptions()
    with running_bench(run_dir, phase="DEPLOY", hw_args=["--fault", f"{UNIT}=open_circuit:A"]) as bench:
        backend = LinkBackend.connect(bench.ground_link)
        lines: list[str] = []
        try:
            proc = Procedure(backend, log=lines.append)
            cfg = proc.dictionary.system(UNIT).config
            wait_s = cfg["separation"]["expected_s"] + cfg_opts.sep_margin_s + cfg["cooldown_s"]
            _, fire = arm_and_fire(proc, fire_timeout=wait_s + 10)
            assert fire.ok, fire
            # one progress report per attempt
            assert [(r.stage, r.step) for r in fire.reports] == [
                ("acceptance", None), ("start", None), ("progress", 1), ("progress", 2), ("completion", None)]
            firings = proc.events("DEPLOY_FIRING", EVT_DEP_UNIT=UNIT)
            assert [(e["params"]["EVT_DEP_ACTUATOR"], e["params"]["EVT_DEP_ATTEMPT"]) for e in firings] == \
                [("A", 1), ("B", 2)]
            assert proc.wait_event("ALPINE_NO_CURRENT", ALPINE_NC_ACTUATOR="A", timeout=1)
            retry = proc.wait_event("DEPLOY_RETRY", EVT_DEP_UNIT=UNIT, timeout=1)["params"]
            assert retry["EVT_DEP_ACTUATOR"] == "B" and retry["EVT_DEP_REASON"] == "NO_SEPARATION"
            check_released(proc, "B", 2)
            # real timing: B fired after the separation time, its margin and the cool-down, not before
            gap = firings[1]["time"] - firings[0]["time"]
            assert cfg["separation"]["expected_s"] + cfg["cooldown_s"] <= gap <= wait_s + 1.5, gap
            assert wait_s - 0.5 <= fire.reports[-1].received - fire.sent_at <= wait_s + 2.5
            assert not proc.events("DEPLOY_FAILED", since="start")
        finally:
            backend.close()
            print("\n".join(lines))
    rec = durable_record(run_dir)
    assert rec is not None and rec["state"] == "RELEASED" and rec["attempts"] == 2 and rec["actuator"] == "B"
