"""LuSEE-Lite model: a low-frequency radio spectrometer whose power follows its mode.

ANALOG, ON and SCIENCE draw the dictionary's mode powers.  In SCIENCE the
spectrometer integrates for ``<L>_INTEGRATION`` (``config.integration_ms``
until ``<L>_SET_INTEGRATION`` changes it) and then sends one spectrum per
correlation product (``config.products``), each a ``<L>_SPECTRUM`` packet
of as many channels as its layout holds.  The sky is the galactic
synchrotron background (power falling as f^-2.5 across ``config.band_mhz``)
with radiometer noise that shrinks with the integration time.  Short
integrations produce data faster than the line carries: the unit's output
FIFO then overflows, and the drops are counted and reported.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from fsw.core.timers import Periodic
from fsw.dictionary import Command, Dictionary, Parameter, System
from fsw.protocol.pus import PusTc

from .unit import Rng, UnitModel

FULL_SCALE = 2.0e9   # counts of the brightest channel


class LuseeModel(UnitModel):
    def __init__(self, dictionary: Dictionary, system: System, rng: Rng, powered: bool = True) -> None:
        super().__init__(dictionary, system, rng, powered)
        n = system.name
        cfg = system.config
        self.spec_pkt = system.packet(f"{n}_SPECTRUM")
        self.channels = self.spec_pkt.param(f"{n}_POWER").count
        if int(cfg.get("channels", self.channels)) != self.channels:
            raise ValueError(f"{n}: config.channels ({cfg.get('channels')}) differs from the "
                             f"{self.spec_pkt.name} layout ({self.channels})")
        prod_enum = self.spec_pkt.param(f"{n}_PRODUCT_ID").enum
        self.products = list(cfg.get("products") or (prod_enum.values if prod_enum else []))
        if prod_enum is not None and any(p not in prod_enum.values for p in self.products):
            raise ValueError(f"{n}: config.products must be labels of {prod_enum.name}")
        lo, hi = cfg.get("band_mhz", [0.5, 50.0])
        self.freqs = [lo + (hi - lo) * (k + 0.5) / self.channels for k in range(self.channels)]
        self._sky = np.array([(f / self.freqs[0]) ** -2.5 for f in self.freqs])
        self.default_integration_ms = int(cfg.get("integration_ms", 1000))
        self.integration_ms = self.default_integration_ms
        self.spectra = 0
        self.integrations = 0
        self._timer: Periodic | None = None

    def on_boot(self, now: float) -> None:
        self.integration_ms = self.default_integration_ms
        self.integrations = 0
        self._restart(now)

    def on_power_off(self, now: float) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _restart(self, now: float) -> None:
        """A fresh integration, in SCIENCE; outside it the spectrometer does not integrate (no timer runs)."""
        self._stop()
        if self.mode == "SCIENCE":
            period = self.integration_ms / 1000.0
            self._timer = self.timers.every(period, self._integrated, now + period)

    def on_mode_change(self, old: str, new: str, now: float) -> None:
        if self.powered and "SCIENCE" in (old, new):
            self._restart(now)   # a fresh integration starts on entering SCIENCE, and stops on leaving it

    def execute(self, cmd: Command, args: dict, tc: PusTc, now: float) -> float | None:
        if cmd.name == f"{self.system.name}_SET_INTEGRATION":
            self.integration_ms = args["integration_ms"]
            self._restart(now)
            return None
        return super().execute(cmd, args, tc, now)

    def _integrated(self, now: float) -> None:
        if not self.answering(now) or self.mode != "SCIENCE":
            return
        n = self.system.name
        # radiometer equation: relative noise 1 / sqrt(channel bandwidth x integration time)
        bw_hz = (self.freqs[1] - self.freqs[0]) * 1e6 if self.channels > 1 else 1e6
        rel = 1.0 / math.sqrt(bw_hz * self.integration_ms / 1000.0)
        noise = self.noise.standard_normal((len(self.products), self.channels))
        if self.products:
            # every product's spectrum in one array: a row per product, each element computed as for one alone
            scales = np.array([[FULL_SCALE * (0.3 if product.startswith("CROSS") else 1.0) * (1.0 + 0.02 * k)]
                               for k, product in enumerate(self.products)])
            # counts are whole and never negative (truncated like int())
            spectra = np.maximum(0.0, scales * self._sky * (1.0 + rel * noise)).astype(np.int64).tolist()
            for product, spectrum in zip(self.products, spectra):
                self.spectra += 1
                self.send_science(self.spec_pkt, {f"{n}_SPEC_SEQ": self.integrations, f"{n}_PRODUCT_ID": product,
                                                  f"{n}_INTEG_MS": self.integration_ms, f"{n}_POWER": spectrum}, now)
        self.integrations += 1

    def param_source(self, p: Parameter) -> Callable[[float], Any]:
        n = self.system.name
        if p.name == f"{n}_INTEGRATION":
            return lambda now: self.integration_ms
        if p.name == f"{n}_SPECTRA":
            return lambda now: self.spectra
        return super().param_source(p)
