"""Farside Seismic Suite model: a very-broadband vertical and a 3-axis short-period seismometer.

Both sensors sample continuously while the FSS is in CHECKOUT, SCIENCE or
HANDOVER (``config.vbb_sps``, ``config.sp_sps``).  Each science packet
carries as many samples as its dictionary layout holds (``<FSS>_VBB_V``,
``<FSS>_SP_X/Y/Z``), so a packet leaves every ``count / sps`` seconds; the
first sample's index (counted from power-on) travels with it, so ground can
see any gap.  In HANDOVER the FSS sends its science through its own radio:
the lander line carries housekeeping only.

The signal is seeded noise, a slow tidal term, occasional moonquakes (a
decaying burst), and, while ``<FSS>_CALIBRATE`` runs, a 1 Hz calibration
sine of ``config.cal_amplitude_counts``.  ``<FSS>_LEVEL`` moves the tilt at
``config.level_rate_urad_s`` and completes when it gets there.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fsw.core.timers import Periodic
from fsw.dictionary import Command, Dictionary, Parameter, System
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitModel

RECORDING_MODES = ("CHECKOUT", "SCIENCE", "HANDOVER")
STREAMING_MODES = ("CHECKOUT", "SCIENCE")
#: the VBB's gain by FSS_SET_GAIN label
VBB_GAINS = {"LOW": 1.0, "MID": 4.0, "HIGH": 16.0}


def _burst(amp: float, dt: np.ndarray) -> np.ndarray:
    """A moonquake of amplitude ``amp`` counts, ``dt`` (not negative) seconds after its onset."""
    return amp * np.exp(-dt / 60.0) * np.sin(2 * math.pi * 1.3 * dt)


class Stream:
    """One sensor's sample clock: ``n`` samples a packet at ``sps``."""

    def __init__(self, sps: float, n: int) -> None:
        if sps <= 0 or n <= 0:
            raise ValueError("a stream needs a positive sample rate and packet size")
        self.sps = float(sps)
        self.n = n
        self.next_index = 0
        self.timer: Periodic | None = None
        #: each sample's time within its packet, after the packet's first
        self.offsets = np.arange(n) / self.sps

    @property
    def period(self) -> float:
        return self.n / self.sps


class FssModel(UnitModel):
    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        super().__init__(dictionary, system, rng, powered)
        n = system.name
        cfg = system.config
        self.vbb_pkt = system.packet(f"{n}_VBB_SCI")
        self.sp_pkt = system.packet(f"{n}_SP_SCI")
        self.axes = ("X", "Y", "Z")[: int(cfg.get("sp_axes", 3))]
        self.vbb = Stream(float(cfg.get("vbb_sps", 20)), self.vbb_pkt.param(f"{n}_VBB_V").count)
        self.sp = Stream(float(cfg.get("sp_sps", 100)), self.sp_pkt.param(f"{n}_SP_X").count)
        self.noise_counts = float(cfg.get("noise_counts", 40))
        self.cal_amplitude = float(cfg.get("cal_amplitude_counts", 20000))
        self.level_rate = float(cfg.get("level_rate_urad_s", 40))
        self.samples = 0
        self.cal_until = -math.inf
        self.tilt = float(next((p.sim.get("nominal", 0.0) for pk in self.hk_packets for p in pk.params
                                if p.name == f"{n}_TILT"), 0.0))
        self._level: tuple[float, float, float, float] | None = None  # (t0, tilt0, target, t_end)
        self._quake: tuple[float, float] | None = None  # (onset, amplitude)
        self._keys = {k: f"{n}_{k}" for k in ("VBB_GAIN", "VBB_FIRST", "VBB_V", "SP_FIRST")}
        self._sp_keys = [f"{n}_SP_{axis}" for axis in self.axes]

    # -- power and modes ---------------------------------------------------------------
    def on_boot(self, now: float) -> None:
        self.samples = 0
        for s, fn in ((self.vbb, self._vbb_tick), (self.sp, self._sp_tick)):
            s.next_index = 0
            s.timer = self.timers.every(s.period, fn, now + s.period)

    def on_power_off(self, now: float) -> None:
        for s in (self.vbb, self.sp):
            if s.timer is not None:
                s.timer.cancel()
                s.timer = None
        self._level = None
        self.cal_until = -math.inf

    # -- the seismic signal ----------------------------------------------------------------
    def _signal(self, t: np.ndarray, rows: int = 1) -> np.ndarray:
        """The ground motion at the sample times ``t`` for ``rows`` axes (each its own noise), at unit gain."""
        v = self.noise.normal(0.0, self.noise_counts, (rows, len(t)))
        common = 300.0 * np.sin(t * (2 * math.pi / 3600.0))       # the tide, the same on every axis
        if self._quake is not None:
            onset, amp = self._quake
            dt = t - onset
            if dt[-1] > 300:
                self._quake = None     # the burst has died away by the end of this block
            if dt[0] >= 0 and dt[-1] <= 300:     # the whole block within the burst (the usual case)
                common = common + _burst(amp, dt)
            else:
                on = (dt >= 0) & (dt <= 300)
                if on.any():
                    common = common + np.where(on, _burst(amp, np.clip(dt, 0.0, None)), 0.0)
        if t[0] < self.cal_until:
            common = common + np.where(t < self.cal_until, self.cal_amplitude * np.sin(2 * math.pi * t), 0.0)
        v += common
        return v

    def _maybe_quake(self, now: float) -> None:
        if self._quake is None and self.rng.random() < 1.0 / 900.0:
            self._quake = (now, 2000.0 + 20000.0 * self.rng.random())

    def _gain(self) -> float:
        return VBB_GAINS.get(str(self.values.get(self._keys["VBB_GAIN"], "LOW")), 1.0)

    def _block(self, s: Stream, now: float, gain: float, rows: int = 1) -> tuple[int, list[list[int]]]:
        """The last packet period's samples of ``rows`` sensor axes (each with its own noise)."""
        first = s.next_index
        t = now - s.period + s.offsets
        v = self._signal(t, rows) * gain
        s.next_index += s.n
        return first, v.astype(np.int64).tolist()   # whole counts, truncated like int()

    def _vbb_tick(self, now: float) -> None:
        if not self.answering(now) or self.mode not in RECORDING_MODES:
            return
        self._maybe_quake(now)
        first, (vals,) = self._block(self.vbb, now, self._gain())
        self.samples += len(vals)
        if self.mode in STREAMING_MODES:
            k = self._keys
            self.send_science(self.vbb_pkt, {k["VBB_FIRST"]: first, k["VBB_V"]: vals}, now)

    def _sp_tick(self, now: float) -> None:
        if not self.answering(now) or self.mode not in RECORDING_MODES:
            return
        values: dict[str, Any] = {}
        first, rows = self._block(self.sp, now, 0.25, len(self.axes))
        for key, vals in zip(self._sp_keys, rows):
            values[key] = vals
            self.samples += len(vals)
        values[self._keys["SP_FIRST"]] = first
        if self.mode in STREAMING_MODES:
            self.send_science(self.sp_pkt, values, now)

    # -- commands ----------------------------------------------------------------------------
    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        n = self.system.name
        if cmd.name == f"{n}_LEVEL":
            tilt = self.current_tilt(now)
            target = float(args["target_urad"])
            t_end = now + abs(target - tilt) / self.level_rate
            self._level = (now, tilt, target, t_end)
            self.timers.call_at(t_end, self._levelled)
            return t_end
        if cmd.name == f"{n}_CALIBRATE":
            self.cal_until = now + args["duration_s"]
            return self.cal_until
        return super().execute(cmd, args, tc, now)

    def current_tilt(self, now: float) -> float:
        if self._level is None:
            return self.tilt
        t0, tilt0, target, t_end = self._level
        if now >= t_end or t_end <= t0:
            return target
        return tilt0 + (target - tilt0) * (now - t0) / (t_end - t0)

    def _levelled(self, now: float) -> None:
        if self._level is None or not self.powered:
            return
        self.tilt = self._level[2]
        self._level = None
        if self.answering(now):
            self.emit(f"{self.system.name}_LEVELLED", now, **{f"{self.system.name}_TILT_EVT": int(self.tilt)})

    def param_source(self, p: Parameter) -> Callable[[float], Any]:
        n = self.system.name
        if p.name == f"{n}_SAMPLES":
            return lambda now: self.samples
        if p.name == f"{n}_TILT":
            noise = float(p.sim.get("noise", 0.0))
            return lambda now: self.current_tilt(now) + self.rng.gauss(0.0, noise)
        if p.name == f"{n}_CAL_ACTIVE":
            return lambda now: now < self.cal_until
        return super().param_source(p)
