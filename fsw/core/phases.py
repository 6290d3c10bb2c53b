"""Mission phases: the phase table from the dictionary, the current phase, and phase changes.

A phase change is a command (``SET_PHASE``): it is verified (PUS-1), vetoed
when a component reports a state the new phase forbids (a payload running in
a mode the phase does not allow, for example), reported with the
``PHASE_CHANGED`` event, and kept in durable state so that a restart comes
back in the same phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..dictionary.model import Phase
from .state import load_record, save_record

if TYPE_CHECKING:
    from ..dictionary import Command
    from ..protocol.pus import PusTc
    from .flight import FlightSoftware

#: veto(new_phase, now) -> a reason (failure code name) to refuse the change, or None
PhaseVeto = Callable[[Phase, float], "str | None"]
PhaseListener = Callable[[Phase, Phase, float], None]


class PhaseManager:
    RECORD = "phase"

    def __init__(self, fsw: "FlightSoftware", initial: str = "PRELAUNCH") -> None:
        self.fsw = fsw
        self.table = fsw.dictionary.phases
        if not self.table:
            raise ValueError("the mission dictionary declares no phases")
        if initial not in self.table:
            raise ValueError(f"unknown phase {initial!r}; known: {', '.join(self.table)}")
        self.current: Phase = self.table[initial]
        self.entered_at = 0.0
        self._vetoes: list[PhaseVeto] = []
        self._listeners: list[PhaseListener] = []
        fsw.register_command("SET_PHASE", self._cmd_set_phase)
        fsw.on_start(self._restore)

    def add_veto(self, veto: PhaseVeto) -> None:
        self._vetoes.append(veto)

    def on_change(self, listener: PhaseListener) -> None:
        self._listeners.append(listener)

    def _restore(self, now: float) -> None:
        rec = load_record(self.fsw.store, self.RECORD)
        if rec and rec.get("phase") in self.table:
            self.current = self.table[rec["phase"]]
            self.entered_at = float(rec.get("since", now))
        else:
            self.entered_at = now
        self.fsw.hk.scale_periods(self.current.hk_factor, now)

    def change(self, name: str, now: float) -> str | None:
        """Enter phase ``name``; returns a failure code name if refused."""
        new = self.table.get(name)
        if new is None:
            return "ARG_OUT_OF_RANGE"
        for veto in self._vetoes:
            reason = veto(new, now)
            if reason is not None:
                return reason
        old = self.current
        self.current = new
        self.entered_at = now
        save_record(self.fsw.store, self.RECORD, {"phase": new.name, "since": now})
        self.fsw.hk.scale_periods(new.hk_factor, now)
        self.fsw.emit("PHASE_CHANGED", now, PHASE_FROM=old.name, PHASE_TO=new.name)
        for listener in self._listeners:
            listener(old, new, now)
        return None

    def _cmd_set_phase(self, cmd: "Command", args: dict, tc: "PusTc", now: float) -> None:
        from .flight import CommandFailure

        reason = self.change(args["phase"], now)
        if reason is not None:
            raise CommandFailure(reason, self.table[args["phase"]].value, stage="start")
