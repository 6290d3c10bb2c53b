"""Packet generation shared by the flight software and every simulated unit.

:class:`TmSource` stamps telemetry for one APID: 14-bit sequence counts, a
PUS-C message type counter per (service, subtype), CUC time from ``now``.
:class:`Verifier` writes the PUS-1 verification reports for received TCs,
honouring the TC's acknowledgement flags (failures are always reported).

Reports go to the TC's source: their destination id is the TC's source id
(ECSS-E-ST-70-41C 5.4.2.1), so a node that sends telecommands of its own
(the flight software commanding the PDU) can tell its reports from those of
ground's telecommands, whose request ids may be the same.

Acknowledgement flags (ECSS-E-ST-70-41C, TC secondary header, 4 bits):
``0b0001`` acceptance, ``0b0010`` start, ``0b0100`` progress, ``0b1000`` completion.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..dictionary import Dictionary, TmPacket
from ..protocol.pus import PusTc, PusTm

ACK_ACCEPTANCE = 0b0001
ACK_START = 0b0010
ACK_PROGRESS = 0b0100
ACK_COMPLETION = 0b1000
ACK_ALL = 0b1111


class TmSource:
    """Builds the TM packets of one APID."""

    __slots__ = ("dictionary", "apid", "seq", "_msg_counters", "packets_made")

    def __init__(self, dictionary: Dictionary, apid: int) -> None:
        self.dictionary = dictionary
        self.apid = apid
        self.seq = 0
        self._msg_counters: dict[tuple[int, int], int] = {}
        self.packets_made = 0

    def make(self, service: int, subservice: int, data: bytes, now: float, dest_id: int = 0) -> bytes:
        key = (service, subservice)
        cnt = self._msg_counters.get(key, 0)
        self._msg_counters[key] = (cnt + 1) & 0xFFFF
        seq = self.seq
        self.seq = (seq + 1) & 0x3FFF
        self.packets_made += 1
        return PusTm(self.apid, service, subservice, data, seq_count=seq, msg_counter=cnt, dest_id=dest_id,
                     time=now if now > 0 else 0.0).pack()

    def packet(self, pkt: TmPacket, values: Mapping[str, Any], now: float, eng: bool = True,
               dest_id: int = 0) -> bytes:
        """A dictionary-declared packet filled with ``values``."""
        return self.make(pkt.service, pkt.subservice, self.dictionary.encode_tm(pkt, values, eng), now, dest_id)

    def event(self, system: str, name: str, now: float, **args: Any) -> bytes:
        evt = self.dictionary.event(system, name)
        return self.make(5, evt.subservice, self.dictionary.encode_event(evt, args), now)


class Verifier:
    """PUS-1 reports for one unit, sent through ``TmSource``."""

    def __init__(self, tm: TmSource) -> None:
        self.tm = tm
        d = tm.dictionary
        self._pk = {name: d.packet(name) for name in (
            "ACCEPT_OK", "ACCEPT_FAIL", "START_OK", "START_FAIL", "PROGRESS_OK", "PROGRESS_FAIL",
            "COMPLETE_OK", "COMPLETE_FAIL")}

    @staticmethod
    def _req(tc: PusTc) -> dict[str, int]:
        return {"TC_PACKET_ID": 0x1800 | tc.apid, "TC_SEQ_CTRL": (tc.seq_flags << 14) | tc.seq_count}

    def _ok(self, name: str, flag: int, tc: PusTc, now: float, **extra: Any) -> bytes | None:
        if not tc.ack_flags & flag:
            return None
        return self.tm.packet(self._pk[name], {**self._req(tc), **extra}, now, dest_id=tc.source_id)

    def _fail(self, name: str, tc: PusTc, code: str | int, data: int, now: float, **extra: Any) -> bytes:
        if isinstance(code, str):
            code = self.tm.dictionary.failure_code(code)
        return self.tm.packet(self._pk[name], {**self._req(tc), "FAILURE_CODE": code,
                                               "FAILURE_DATA": data & 0xFFFFFFFF, **extra}, now, eng=False,
                              dest_id=tc.source_id)

    def accept(self, tc: PusTc, now: float) -> bytes | None:
        return self._ok("ACCEPT_OK", ACK_ACCEPTANCE, tc, now)

    def reject(self, tc: PusTc, code: str | int, now: float, data: int = 0) -> bytes:
        return self._fail("ACCEPT_FAIL", tc, code, data, now)

    def start(self, tc: PusTc, now: float) -> bytes | None:
        return self._ok("START_OK", ACK_START, tc, now)

    def start_fail(self, tc: PusTc, code: str | int, now: float, data: int = 0) -> bytes:
        return self._fail("START_FAIL", tc, code, data, now)

    def progress(self, tc: PusTc, step: int, now: float) -> bytes | None:
        return self._ok("PROGRESS_OK", ACK_PROGRESS, tc, now, STEP=step)

    def progress_fail(self, tc: PusTc, step: int, code: str | int, now: float, data: int = 0) -> bytes:
        return self._fail("PROGRESS_FAIL", tc, code, data, now, STEP=step)

    def complete(self, tc: PusTc, now: float) -> bytes | None:
        return self._ok("COMPLETE_OK", ACK_COMPLETION, tc, now)

    def complete_fail(self, tc: PusTc, code: str | int, now: float, data: int = 0) -> bytes:
        return self._fail("COMPLETE_FAIL", tc, code, data, now)
