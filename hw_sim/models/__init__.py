"""Simulated devices, pure and on the injected clock.

:data:`MODEL_CLASSES` maps a unit's system name to its model class; a unit
without an entry gets the generic dictionary-driven :class:`UnitModel`, so
a payload team can add a unit with a data file alone.  Register a model
with one line here.
"""

from __future__ import annotations

from typing import Any

from fsw.dictionary import Dictionary, System

from .deploy import DeployControllerModel
from .fss import FssModel
from .lister import ListerModel
from .lms import LmsModel
from .lusee import LuseeModel
from .pdu import PduModel
from .unit import Rng, UnitModel

#: system name -> model class (constructor: (dictionary, system, rng, powered=True))
MODEL_CLASSES: dict[str, type[UnitModel]] = {
    "PDU": PduModel,
    "FSS": FssModel,
    "LISTER": ListerModel,
    "LMS": LmsModel,
    "LUSEE": LuseeModel,
    "ALPINE": DeployControllerModel, "LUPINE": DeployControllerModel,  # relay release controllers
}


def make_model(dictionary: Dictionary, system: System, rng: Rng, **kwargs: Any) -> UnitModel:
    """The model of ``system``: its registered class, else the generic :class:`UnitModel`."""
    cls = MODEL_CLASSES.get(system.name, UnitModel)
    return cls(dictionary, system, rng, **kwargs)


__all__ = ["MODEL_CLASSES", "FssModel", "ListerModel", "LmsModel", "LuseeModel", "PduModel", "UnitModel",
           "make_model"]
