"""The simulated lander hardware, assembled from the dictionary: every unit's model, the PDU wired to its loads.

``build_hardware(dictionary, seed)`` makes one model per unit (every system
except the lander; :func:`hw_sim.models.make_model` picks the class) and
wires the PDU: each ``main`` channel powers its unit, which therefore starts
unpowered; each ``actuator`` channel feeds its deploy unit's actuator bus.
Units on no main channel (the PDU itself, the deploy controllers' logic)
are powered from the start.  Each unit gets its own seeded generator,
derived from the seed and its name, so adding a unit does not change
another's noise.

The real-time CLI (``hw-sim``) and the simulated-time benches both start
here; :meth:`Hardware.connect` wires everything to a flight-software node in
a :class:`~fsw.core.simrunner.SimRunner`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from fsw.dictionary import Dictionary

from .models import make_model
from .models.pdu import PduModel
from .models.unit import LINE, UnitModel

GENERIC_FAULTS = ("silent", "babble", "crash", "overcurrent", "clear")


@dataclass
class Hardware:
    dictionary: Dictionary
    #: every non-lander unit by system name, in dictionary order
    units: dict[str, UnitModel] = field(default_factory=dict)
    pdu: PduModel | None = None

    def unit(self, name: str) -> UnitModel:
        try:
            return self.units[name.upper()]
        except KeyError:
            raise KeyError(f"no unit {name!r}; units: {', '.join(self.units)}") from None

    def connect(self, runner: Any, fsw: Any, paced: bool = True) -> None:
        """Add every unit to ``runner`` and wire it to the flight software's port for it (at its baud)."""
        for name, model in self.units.items():
            system = self.dictionary.system(name)
            runner.add(model)
            runner.connect(fsw, system.port, model, LINE, baud=system.baud if paced else None)

    def inject(self, unit: str, kind: str) -> None:
        """Inject a fault: ``silent``, ``babble``, ``crash``, ``overcurrent`` (the unit's main channel draws
        beyond its limit), ``overcurrent:<CHANNEL>`` (on the PDU) or ``clear``; other kinds go to the
        model's own ``inject_fault(kind)`` if it has one.  Raises ValueError or KeyError."""
        model = self.unit(unit)
        base, _, arg = kind.strip().lower().partition(":")
        if base == "silent":
            model.silent = True
        elif base == "babble":
            model.babble = True
        elif base == "crash":
            model.crash(model._now)
        elif base == "overcurrent":
            if self.pdu is None:
                raise ValueError("there is no PDU to draw overcurrent from")
            if model is self.pdu:
                if not arg:
                    raise ValueError("on the PDU, name the channel: overcurrent:<CHANNEL>")
                self.pdu.inject_overcurrent(arg.upper())
            else:
                ch = self.pdu.channel_of(model.system.name, "main") or self.pdu.channel_of(model.system.name,
                                                                                          "actuator")
                if ch is None:
                    raise ValueError(f"{model.system.name} is on no PDU channel")
                self.pdu.inject_overcurrent(ch.name)
        elif base == "clear":
            model.silent = False
            model.babble = False
            model.crashed = False
            model.extra_load_w = 0.0
            if model is self.pdu:
                self.pdu.clear_faults()
            elif self.pdu is not None:
                for ch in self.pdu.channels.values():
                    if ch.unit == model.system.name:
                        self.pdu.clear_fault(ch.name)
        elif hasattr(model, "inject_fault"):
            model.inject_fault(kind)
        else:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(GENERIC_FAULTS)}")


def build_hardware(dictionary: Dictionary, rng_seed: int) -> Hardware:
    """Every non-lander unit's model, with the PDU wired to its loads (see the module docstring)."""
    pdus = dictionary.systems_of_kind("pdu")
    if len(pdus) > 1:
        raise ValueError(f"more than one PDU in the dictionary: {', '.join(p.name for p in pdus)}")
    behind_main: set[str] = set()
    if pdus:
        from .models.pdu import parse_channels
        for ch in parse_channels(pdus[0]).values():
            if ch.kind == "main":
                behind_main.add(ch.unit)
    hw = Hardware(dictionary)
    for s in dictionary.systems:
        if s.kind == "lander":
            continue
        rng = random.Random(f"{rng_seed}/{s.name}")
        kwargs = {"powered": False} if s.name in behind_main else {}
        hw.units[s.name] = make_model(dictionary, s, rng, **kwargs)
    if pdus:
        pdu = hw.units[pdus[0].name]
        if not isinstance(pdu, PduModel):
            raise ValueError(f"{pdus[0].name} is not modelled by a PduModel")
        hw.pdu = pdu
        for ch in pdu.channels.values():
            if ch.kind != "heater" and ch.unit in hw.units:
                pdu.attach(ch.name, hw.units[ch.unit])
    return hw
