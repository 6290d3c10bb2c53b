"""``ground demo``: a shortened mission over real pseudo-terminals, three processes, for bench demonstrations.

hw-sim (every unit on its own pty) and the flight software run as separate
processes, at a scaled real-time rate; this process is the ground station on
the flight software's ground pty.  The timeline: connection test, checkout of
every payload through its modes, release of Alpine in the DEPLOY phase (and
Lupine refused for the spacing between releases), landing, science on every
payload, then a summary of energy and data volume per payload.  Every process
is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from fsw.dictionary import load_dictionary

from .procedures import Procedure, ProcedureFailure, open_backend

CHECKOUT = {  # payload: (mode after boot, modes to run through)
    "FSS": ("SURVIVAL", ["CHECKOUT", "SCIENCE"]),
    "LISTER": ("STANDBY", []),
    "LMS": ("SAFE", ["DEPLOY"]),
    "LUSEE": ("ANALOG", ["ON", "SCIENCE"]),
}


def add_demo_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo", help="a shortened mission over real pseudo-terminals (hw-sim, fsw and ground as processes)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=5.0, metavar="X",
                   help="mission time runs X times faster than the wall clock (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated hardware (default 1)")
    p.add_argument("--run-dir", default=None, metavar="DIR",
                   help="where the pty symlinks and logs go (default: a new temporary directory)")
    p.add_argument("--science-s", type=float, default=20.0, metavar="S",
                   help="seconds of surface science (wall clock) before the summary (default 20)")
    p.set_defaults(handler=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.rate <= 0 or args.science_s < 0:
        print("ground: --rate must be positive and --science-s not negative", file=sys.stderr)
        return 2
    d = load_dictionary(getattr(args, "dictionary", None))
    t0 = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - t0:7.2f} s] {line}", flush=True)

    log(f"starting hw-sim and fsw on pseudo-terminals (mission time x{args.rate:g})")
    try:
        with open_backend("pty", dictionary=d, seed=args.seed, phase="PRELAUNCH", run_dir=args.run_dir,
                          hw_args=["-q"], fsw_args=["-q", "--provision"],
                          connect_timeout=10.0) as backend:
            bench = backend.bench
            log(f"bench up in {bench.run_dir}: ground link {bench.ground_link}")
            proc = Procedure(backend, log=lambda line: log("  " + line), name="demo")
            summary = run_demo(proc, d, args.science_s)
            codes = bench.stop()
    except ProcedureFailure as exc:
        log(f"DEMO FAILED: {exc}")
        return 1
    except (OSError, RuntimeError) as exc:
        print(f"ground: demo: {exc}", file=sys.stderr)
        return 1
    print("\n== Bench demonstration summary ==")
    for line in summary:
        print(line)
    print(f"processes stopped: {', '.join(f'{k} exit {v}' for k, v in codes.items())}")
    print(f"wall time {time.monotonic() - t0:.1f} s")
    return 0


def run_demo(proc: Procedure, d: Any, science_s: float) -> list[str]:
    proc.send_and_assert("PING")
    proc.wait_tm("POWER_PDU_STALE", "==", False, timeout=30)
    for unit, (boot_mode, modes) in CHECKOUT.items():
        proc.send_and_assert("PAYLOAD_POWER_ON", unit=unit)
        proc.wait_tm(f"{unit}_MODE", "==", boot_mode, timeout=60)
        proc.send_and_assert("PING", system=unit)
        for mode in modes:
            proc.send_and_assert(f"{unit}_SET_MODE", mode=mode)
            proc.wait_tm(f"{unit}_MODE", "==", mode, timeout=30)
        proc.send_and_assert("PAYLOAD_POWER_OFF", unit=unit)
    proc.send_and_assert("SET_PHASE", phase="DEPLOY")
    proc.send_and_assert("DEPLOY_ARM", unit="ALPINE", confirm="ALPINE")
    proc.send_and_assert("DEPLOY_FIRE", unit="ALPINE", confirm="ALPINE")
    proc.wait_tm("DEP_STATE", "==", "RELEASED", where={"DEP_UNIT": "ALPINE"}, timeout=60)
    proc.expect_failure("DEPLOY_ARM", "SPACING", unit="LUPINE", confirm="LUPINE")
    proc.send_and_assert("SET_PHASE", phase="DESCENT")
    proc.send_and_assert("SET_PHASE", phase="SURFACE")
    for unit in CHECKOUT:
        proc.send_and_assert("PAYLOAD_POWER_ON", unit=unit)
    for unit, (boot_mode, _) in CHECKOUT.items():
        proc.wait_tm(f"{unit}_MODE", "==", boot_mode, timeout=60)
    proc.send_and_assert("FSS_SET_MODE", mode="SCIENCE")
    proc.send_and_assert("LUSEE_SET_MODE", mode="ON")
    proc.send_and_assert("LUSEE_SET_MODE", mode="SCIENCE")
    proc.sleep(science_s)
    rows = {}
    for unit in CHECKOUT:
        rows[unit] = proc.wait_tm(lambda rec, u=unit: rec.get("name") == "PAYLOAD_HK"
                                  and (rec.get("params") or {}).get("PL_UNIT") == u, timeout=60, since="now")
    alpine = proc.wait_tm(lambda rec: rec.get("name") == "DEPLOY_HK"
                          and (rec.get("params") or {}).get("DEP_UNIT") == "ALPINE", timeout=60, since="now")
    lines = []
    for unit, rec in rows.items():
        p = rec["params"]
        lines.append(f"{unit:<7} {p.get('PL_STATE')!s:<9} energy {float(p.get('PL_ENERGY') or 0):8.3f} Wh  "
                     f"data {int(p.get('PL_BYTES') or 0) / 1000:9.1f} kB (science "
                     f"{int(p.get('PL_SCI_BYTES') or 0) / 1000:.1f} kB)  packets {p.get('PL_PACKETS')}")
    ap = alpine["params"]
    lines.append(f"ALPINE  {ap.get('DEP_STATE')} after {ap.get('DEP_ATTEMPTS')} attempt(s), actuator "
                 f"{ap.get('DEP_ACTUATOR')}; LUPINE refused for the spacing between releases (SPACING)")
    for unit in CHECKOUT:
        proc.send_and_assert("PAYLOAD_POWER_OFF", unit=unit)
    return lines
