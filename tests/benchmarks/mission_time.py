"""Benchmark: the whole reference mission (L-1 h to L+49 d) in simulated time (not a test).

    .venv/bin/python -m tests.benchmarks.mission_time

Runs ``ground.mission.MissionRun`` over ``fsw/missions/reference/scenario.yaml`` and prints the wall and
CPU seconds, the speed-up over real time, and whether every success criterion passed; the figures go
to ``.bench/results.json`` under ``mission_time``.  The target (issue 5) is under 60 s of wall time on
one core.  Quote the speed-up, not the absolute time: a loaded machine moves it.
"""

from __future__ import annotations

import time
from importlib import resources

from fsw.dictionary import load_dictionary
from ground.mission import MissionRun
from ground.scenario import parse_scenario

from . import record, row


def main() -> dict:
    d = load_dictionary()
    sc = parse_scenario((resources.files("fsw.missions") / "reference" / "scenario.yaml").read_text(encoding="utf-8"), d)
    t, c = time.perf_counter(), time.process_time()
    run = MissionRun(sc, d)
    report = run.run()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    simulated = sc.end - sc.start
    result = {"simulated_s": simulated, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "speedup": round(simulated / wall), "steps": run.bench.runner.steps,
              "success": report.success, "criteria_failed": [s.step.criterion for s in report.criteria if not s.ok]}
    print(f"reference mission: {simulated / 86400:.1f} simulated days in {wall:.1f} s wall ({cpu:.1f} s CPU), "
          f"{simulated / wall:,.0f}x real time, {result['steps']} runner steps; "
          f"success criteria {'all passed' if report.success else 'FAILED: ' + ', '.join(result['criteria_failed'])}")
    record("mission_time", result)
    return result


def run(quick: bool) -> list[dict]:
    """The table row of the whole reference mission (skipped by ``--quick``: it takes minutes)."""
    if quick:
        return []
    r = main()
    return [row("reference mission L-1 h to L+49 d in simulated time (space link, stores, impairments)",
                r["wall_s"], goal="< 60 s", met=r["wall_s"] < 60.0, unit="s wall",
                note=f"{r['simulated_s'] / 86400:.1f} simulated days, {r['speedup']:,}x real time, "
                     f"{r['cpu_s']} s CPU, {r['steps']} runner steps, success criteria "
                     + ("all passed" if r["success"] else "FAILED: " + ", ".join(r["criteria_failed"])))]


if __name__ == "__main__":
    main()
