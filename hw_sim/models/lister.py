"""LISTER model: a pneumatic drill that stops every step to measure the thermal gradient and conductivity.

``<L>_DRILL_STEP`` drills ``step_cm`` at ``config.drill_rate_m_per_s`` in
DRILL mode (40 W in the reference dictionary) and completes when the step is
done (``<L>_STEP_DONE``).  Unless ``measure_s`` is 0, the probe then
measures for ``measure_s`` seconds in MEASURE mode: once a second it sends
the temperatures along the probe (``<L>_TEMPS``) while its needle heater
warms the regolith; at the end it fits the gradient (temperature against
depth, before heating) and the conductivity (line-source method: the
temperature rise grows as ``q / (4 pi k) * ln t``), sends ``<L>_RESULT``
and ``<L>_MEASURED``, and returns to STANDBY.  ``<L>_MEASURE`` runs a
measurement on its own; ``<L>_ABORT`` stops either (the interrupted command
fails with EXECUTION_FAILED).

The regolith is ``config.subsurface_temp_c`` plus ``gradient_k_per_m`` per
metre, with conductivity ``conductivity_w_mk``; ``config.stall_depth_m``
(or :meth:`inject_stall`) puts a rock in the way: drilling stops there,
``<L>_STALL`` is reported, the unit goes to SAFE and the step fails.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from fsw.core.timers import Periodic, Timer
from fsw.dictionary import Command, Dictionary, Parameter, System
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitFailure, UnitModel

HEATER_W_PER_M = 0.5        # needle-probe heater, watts per metre of heated length
SENSOR_SPACING_M = 0.02
TEMP_NOISE_K = 0.005


class ListerModel(UnitModel):
    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        super().__init__(dictionary, system, rng, powered)
        n = system.name
        cfg = system.config
        self.max_depth = float(cfg.get("max_depth_m", 3.0))
        self.rate = float(cfg.get("drill_rate_m_per_s", 0.0005))
        if self.rate <= 0:
            raise ValueError(f"{n}: drill_rate_m_per_s must be positive")
        self.t_sub = float(cfg.get("subsurface_temp_c", -40.0))
        self.gradient = float(cfg.get("gradient_k_per_m", 1.6))
        self.conductivity = float(cfg.get("conductivity_w_mk", 0.012))
        stall = cfg.get("stall_depth_m")
        self.stall_depth: float | None = None if stall is None else float(stall)
        self.temps_pkt = system.packet(f"{n}_TEMPS")
        self.result_pkt = system.packet(f"{n}_RESULT")
        self.sensors = self.temps_pkt.param(f"{n}_T").count
        self.depth = 0.0
        self.steps_done = 0
        self.results: list[dict[str, float]] = []
        # the activity under way: ("drill", t0, d0, d1, t_end) or ("measure", t0, t_end)
        self._activity: tuple | None = None
        self._timer: Timer | None = None
        self._sampler: Periodic | None = None
        self._measure_after = 0
        self._failed: set[int] = set()       # request ids of commands that must complete with a failure
        self._active_tc: int | None = None
        self._fit: dict[str, float] = {}

    def inject_stall(self, depth_m: float) -> None:
        self.stall_depth = float(depth_m)

    # -- geometry and the regolith ------------------------------------------------------
    def current_depth(self, now: float) -> float:
        a = self._activity
        if a is not None and a[0] == "drill":
            _, t0, d0, d1, t_end = a
            if now >= t_end:
                return d1
            return d0 + (d1 - d0) * (now - t0) / (t_end - t0)
        return self.depth

    def sensor_depths(self) -> list[float]:
        return [max(0.0, self.depth - k * SENSOR_SPACING_M) for k in range(self.sensors)]

    def _temperature(self, z: float, heating_s: float) -> float:
        t = self.t_sub + self.gradient * z
        if heating_s > 0:
            t += HEATER_W_PER_M / (4 * math.pi * self.conductivity) * math.log(1.0 + heating_s / 10.0)
        return t + self.rng.gauss(0.0, TEMP_NOISE_K)

    # -- power ----------------------------------------------------------------------------
    def on_power_off(self, now: float) -> None:
        if self._activity is not None and self._activity[0] == "drill":
            self.depth = self.current_depth(now)
        self._stop(now)

    def _stop(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self._active_tc is not None:
            self._failed.add(self._active_tc)
            self._active_tc = None
        self._activity = None

    # -- commands ---------------------------------------------------------------------------
    def check(self, cmd: Command, args: dict, now: float) -> None:
        if cmd.name == f"{self.system.name}_SET_MODE" and args["mode"] in ("DRILL", "MEASURE"):
            raise UnitFailure("ARG_OUT_OF_RANGE", data=self.modes.index(args["mode"]))
        if cmd.name == f"{self.system.name}_DRILL_STEP":
            if self.depth + args["step_cm"] / 100.0 > self.max_depth + 1e-9:
                raise UnitFailure("ARG_OUT_OF_RANGE", data=int(self.depth * 1000))

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        n = self.system.name
        if cmd.name == f"{n}_DRILL_STEP":
            d0 = self.depth
            d1 = d0 + args["step_cm"] / 100.0
            stall = self.stall_depth is not None and d0 < self.stall_depth < d1
            stop_at = self.stall_depth if stall else d1
            t_end = now + (stop_at - d0) / self.rate
            self.set_mode("DRILL", now)
            self._activity = ("drill", now, d0, stop_at, t_end)
            self._measure_after = args["measure_s"]
            self._active_tc = tc.request_id
            self._timer = self.timers.call_at(t_end, self._stalled if stall else self._step_done)
            return t_end
        if cmd.name == f"{n}_MEASURE":
            self._active_tc = tc.request_id
            return self._start_measurement(args["duration_s"], now)
        if cmd.name == f"{n}_ABORT":
            if self._activity is not None and self._activity[0] == "drill":
                self.depth = self.current_depth(now)
            self._stop(now)
            self.set_mode("STANDBY", now)
            return None
        if cmd.name == f"{n}_SET_MODE" and args["mode"] in ("STANDBY", "SAFE"):
            if self._activity is not None and self._activity[0] == "drill":
                self.depth = self.current_depth(now)
            self._stop(now)
        return super().execute(cmd, args, tc, now)

    def complete(self, tc: PusTc, now: float) -> None:
        if tc.request_id in self._failed:
            self._failed.discard(tc.request_id)
            self.send(self.verifier.complete_fail(tc, "EXECUTION_FAILED", self.local_time(now),
                                                  int(self.depth * 1000)))
            return
        super().complete(tc, now)

    def _step_done(self, now: float) -> None:
        self._timer = None
        a = self._activity
        self.depth = a[3]
        self._activity = None
        self._active_tc = None
        self.steps_done += 1
        n = self.system.name
        self.emit(f"{n}_STEP_DONE", now, **{f"{n}_DEPTH_EVT": int(round(self.depth * 1000))})
        if self._measure_after > 0:
            self._start_measurement(self._measure_after, now)
        else:
            self.set_mode("STANDBY", now)

    def _stalled(self, now: float) -> None:
        self._timer = None
        self.depth = self._activity[3]
        self._activity = None
        if self._active_tc is not None:
            self._failed.add(self._active_tc)
            self._active_tc = None
        n = self.system.name
        self.emit(f"{n}_STALL", now, **{f"{n}_DEPTH_STALL": int(round(self.depth * 1000))})
        self.set_mode("SAFE", now)

    # -- measurement ---------------------------------------------------------------------------
    def _start_measurement(self, duration_s: float, now: float) -> float:
        t_end = now + duration_s
        self.set_mode("MEASURE", now)
        self._activity = ("measure", now, t_end)
        depths = self.sensor_depths()
        # the gradient comes from the sensors before the heater is on
        before = [self._temperature(z, 0.0) for z in depths]
        self._fit = {"grad": _slope(depths, before), "n": 0.0, "sx": 0.0, "sy": 0.0, "sxx": 0.0, "sxy": 0.0,
                     "t_rest": sum(before) / len(before)}
        self._sampler = self.timers.every(1.0, self._measure_tick, now + 1.0)
        self._timer = self.timers.call_at(t_end, self._measured)
        return t_end

    def _measure_tick(self, now: float) -> None:
        a = self._activity
        if a is None or a[0] != "measure" or not self.answering(now):
            return
        heating = now - a[1]
        depths = self.sensor_depths()
        temps = [self._temperature(z, heating) for z in depths]
        rise = sum(temps) / len(temps) - self._fit["t_rest"]
        x = math.log(1.0 + heating / 10.0)
        f = self._fit
        f["n"] += 1
        f["sx"] += x
        f["sy"] += rise
        f["sxx"] += x * x
        f["sxy"] += x * rise
        n = self.system.name
        self.send_science(self.temps_pkt, {f"{n}_SCI_DEPTH": self.depth,
                                           f"{n}_HEATER_P": HEATER_W_PER_M * SENSOR_SPACING_M * self.sensors,
                                           f"{n}_T": temps}, now)

    def _measured(self, now: float) -> None:
        self._timer = None
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        a = self._activity
        self._activity = None
        self._active_tc = None
        f = self._fit
        den = f["n"] * f["sxx"] - f["sx"] ** 2
        slope = (f["n"] * f["sxy"] - f["sx"] * f["sy"]) / den if f["n"] >= 2 and den > 0 else 0.0
        k = HEATER_W_PER_M / (4 * math.pi * slope) if slope > 0 else 0.0
        grad = f["grad"]
        result = {"depth": self.depth, "duration": now - a[1], "gradient": grad, "conductivity": k,
                  "heat_flow": k * grad * 1000.0}
        self.results.append(result)
        n = self.system.name
        self.send_science(self.result_pkt, {
            f"{n}_RES_DEPTH": self.depth, f"{n}_RES_DURATION": int(round(result["duration"])),
            f"{n}_GRADIENT": grad, f"{n}_CONDUCTIVITY": k, f"{n}_HEAT_FLOW": result["heat_flow"]}, now)
        self.emit(f"{n}_MEASURED", now, **{f"{n}_DEPTH_MEAS": int(round(self.depth * 1000)),
                                            f"{n}_GRADIENT_EVT": int(round(grad * 1000)),
                                            f"{n}_K_EVT": min(0xFFFF, int(round(k * 1000)))})
        self.set_mode("STANDBY", now)

    # -- housekeeping ---------------------------------------------------------------------------
    def param_source(self, p: Parameter) -> Callable[[float], Any]:
        n = self.system.name
        name = p.name
        if name == f"{n}_DEPTH":
            return self.current_depth
        if name == f"{n}_STEPS_DONE":
            return lambda now: min(self.steps_done, 0xFF)
        if name == f"{n}_MOTOR_I":
            return lambda now: max(0.0, (1.3 if self.mode == "DRILL" else 0.02) + self.rng.gauss(0.0, 0.01))
        if name == f"{n}_PRESSURE":
            return lambda now: 350.0 + self.rng.gauss(0.0, 5.0) if self.mode == "DRILL" else 0.0
        if name == f"{n}_TEMP_PROBE":
            return lambda now: self._temperature(self.current_depth(now), 0.0)
        return super().param_source(p)


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
