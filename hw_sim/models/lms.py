"""LMS model: magnetotelluric sounder; deploy four electrodes and a mast, then sample E and B fields.

In DEPLOY mode, ``<L>_DEPLOY`` launches one electrode (``config.throw_time_s``)
or extends the magnetometer mast (``config.mast_time_s``); it completes when
the item is out (``<L>_ITEM_DEPLOYED``).  An item already out fails with
ALREADY_DONE, and a second deployment while one is under way with BUSY.

In SCIENCE mode the LMS samples at ``config.sample_sps``: two electric
dipoles (electrodes 1-2 and 3-4) and three magnetic axes, one packet a
second (as many samples as the ``<L>_FIELDS`` layout holds).  A channel
whose sensor is not deployed reads 0 and its bit in ``<L>_DIPOLES`` is
clear.  The magnetic field is a seeded random walk (a few nT); the electric
field follows it through a surface impedance, plus noise.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from fsw.core.timers import Periodic
from fsw.dictionary import Command, Dictionary, Parameter, System
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitFailure, UnitModel

ELECTRODES = ("ELECTRODE_1", "ELECTRODE_2", "ELECTRODE_3", "ELECTRODE_4")
IMPEDANCE_UV_M_PER_NT = 8.0     # |E| / |B| of the surface impedance, (uV/m) per nT
B_MEMORY = 0.98                 # the random walk's memory per sample (a first-order autoregression)


class LmsModel(UnitModel):
    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        super().__init__(dictionary, system, rng, powered)
        n = system.name
        cfg = system.config
        self.fields_pkt = system.packet(f"{n}_FIELDS")
        self.n = self.fields_pkt.param(f"{n}_E1").count
        self.sps = float(cfg.get("sample_sps", 20))
        if self.sps <= 0:
            raise ValueError(f"{n}: sample_sps must be positive")
        self.throw_s = float(cfg.get("throw_time_s", 5.0))
        self.mast_s = float(cfg.get("mast_time_s", 60.0))
        self.deployed: set[str] = set()     # electrodes and mast stay out through power cycles
        self.deploying: str | None = None
        self._deploy_tc: dict[int, str] = {}
        self.sample_index = 0
        self.b = np.zeros(3)
        # b[i] = B_MEMORY**(i+1) * b0 + sum_j<=i B_MEMORY**(i-j) * kick[j]: a block of the walk in one product
        k = np.arange(self.n)
        self._decay = B_MEMORY ** (k + 1)
        self._walk = np.tril(B_MEMORY ** (k[:, None] - k[None, :]).clip(0)).T
        self._plans: dict[int, tuple] = {}   # see _channels
        self._first_key, self._dipoles_key = f"{n}_SCI_FIRST", f"{n}_DIPOLES"
        self._sampler: Periodic | None = None

    def on_boot(self, now: float) -> None:
        self.sample_index = 0
        period = self.n / self.sps
        self._sampler = self.timers.every(period, self._tick, now + period)

    def on_power_off(self, now: float) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        self.deploying = None  # an interrupted launch never happened

    # -- deployment ----------------------------------------------------------------------
    def check(self, cmd: Command, args: dict, now: float) -> None:
        if cmd.name == f"{self.system.name}_DEPLOY":
            if args["item"] in self.deployed:
                raise UnitFailure("ALREADY_DONE")
            if self.deploying is not None:
                raise UnitFailure("BUSY")

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        if cmd.name == f"{self.system.name}_DEPLOY":
            item = args["item"]
            self.deploying = item
            self._deploy_tc[tc.request_id] = item
            t_end = now + (self.mast_s if item == "MAST" else self.throw_s)
            self.timers.call_at(t_end, lambda t, i=item: self._deployed(i, t))
            return t_end
        return super().execute(cmd, args, tc, now)

    def _deployed(self, item: str, now: float) -> None:
        if self.deploying != item or not self.powered:
            return
        self.deploying = None
        self.deployed.add(item)
        n = self.system.name
        if self.answering(now):
            self.emit(f"{n}_ITEM_DEPLOYED", now, **{f"{n}_ITEM": item})

    def complete(self, tc: PusTc, now: float) -> None:
        # the deployment timer ran first (filed earlier); a launch cut short by a power cycle failed
        item = self._deploy_tc.pop(tc.request_id, None)
        if item is not None and item not in self.deployed:
            self.send(self.verifier.complete_fail(tc, "EXECUTION_FAILED", self.local_time(now)))
            return
        super().complete(tc, now)

    # -- science ----------------------------------------------------------------------------
    def dipoles(self) -> int:
        d = self.deployed
        return ((1 if {"ELECTRODE_1", "ELECTRODE_2"} <= d else 0) | (2 if {"ELECTRODE_3", "ELECTRODE_4"} <= d else 0)
                | (4 if "MAST" in d else 0))

    def _tick(self, now: float) -> None:
        if not self.answering(now) or self.mode != "SCIENCE":
            return
        mask = self.dipoles()
        names, rows, gains, sigmas, idle = self._channels(mask)
        # one draw per packet: the walk's kicks (3 rows), then the noise of each channel that has a sensor;
        # the same numbers, in the same order, as a normal() draw per block, since normal(0, s) is s times
        # the standard normal
        z = self.noise.standard_normal((3 + len(names), self.n))
        b = self.b[:, None] * self._decay + (0.4 * z[:3]) @ self._walk
        self.b = b[:, -1].copy()
        values: dict[str, Any] = dict(idle)
        if names:
            values.update(zip(names, (b.take(rows, axis=0) * gains + z[3:] * sigmas).tolist()))
        values[self._first_key] = self.sample_index
        values[self._dipoles_key] = mask
        self.sample_index += self.n
        self.send_science(self.fields_pkt, values, now)

    def _channels(self, mask: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, dict[str, list[float]]]:
        """The channels with a deployed sensor under ``mask`` (see :meth:`dipoles`): parameter names, and
        per channel the row of the magnetic field it follows, its gain (the surface impedance for the
        electric dipoles) and its noise; then the values of the channels without a sensor (0).
        Computed once per mask."""
        plan = self._plans.get(mask)
        if plan is None:
            n = self.system.name
            # (name, row of b, gain, noise, sensor out)
            chans = [(f"{n}_E1", 1, IMPEDANCE_UV_M_PER_NT, 0.5, mask & 1),
                     (f"{n}_E2", 0, -IMPEDANCE_UV_M_PER_NT, 0.5, mask & 2)]
            chans += [(f"{n}_B{axis}", i, 1.0, 0.02, mask & 4) for i, axis in enumerate("XYZ")]
            on = [c for c in chans if c[4]]
            plan = self._plans[mask] = ([c[0] for c in on], np.array([c[1] for c in on], dtype=np.intp),
                                        np.array([[c[2]] for c in on]), np.array([[c[3]] for c in on]),
                                        {c[0]: [0.0] * self.n for c in chans if not c[4]})
        return plan

    def param_source(self, p: Parameter) -> Callable[[float], Any]:
        n = self.system.name
        if p.name == f"{n}_ELECTRODES_OUT":
            return lambda now: sum(1 for e in ELECTRODES if e in self.deployed)
        if p.name == f"{n}_MAST_DEPLOYED":
            return lambda now: "MAST" in self.deployed
        if p.name == f"{n}_BUS_I":
            return lambda now: self.power_w(now) / 28.0
        return super().param_source(p)
