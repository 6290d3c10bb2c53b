"""FARM-1, the receiving end of COP-1 (CCSDS 232.1-B-2 section 6), one instance per TC virtual channel.

Pure and table-driven.  Every received frame is first *classified* into one
event of the standard (E1-E9) from the frame alone and the state variables,
then the action row of ``TABLE[state][event]`` is applied.  Nothing is
passed to the higher procedures before that classification, so a frame
outside the window can never slip through ahead of the lockout check, and
no event raises in any state (each state has a row for every event).

State variables: V(R) (next expected N(S)), the Lockout, Wait and
Retransmit flags, the 2-bit FARM-B counter, and the sliding window width W
(even, 2 <= W <= 254) split into a positive window PW = W/2 (V(R) itself
included) and a negative window NW = W/2.  All arithmetic is mod 256.

Classification of a valid Type-AD frame, with d = (N(S) - V(R)) mod 256::

    d == 0                   E1 (buffer available) / E2 (no buffer)
    1 <= d <= PW - 1         E3  positive window: a frame was lost, ask for retransmission
    256 - NW <= d <= 255     E4  negative window: an old duplicate
    otherwise                E5  lockout area

Type-BD frames are E6, BC Unlock E7, BC Set V(R) E8, an invalid frame E9
and the higher procedures releasing buffer space E10.

Two choices the standard leaves open, made explicit here:

* The "buffer" is a delivery queue of ``buffer_size`` AD frame data units;
  :meth:`Farm1.take` empties it and signals the buffer release (E10).
* Unlock (E7) in Lockout clears the Lockout flag; if the Wait flag is still
  set (the buffer is still full) FARM-1 goes to Wait rather than Open, so
  that the flags never say "Open" while the buffer is full.
"""

from __future__ import annotations

from collections import Counter, deque
from enum import IntEnum
from typing import Any, Final, NamedTuple

from ..protocol.tcframe import FrameType, TcFrame, parse_control_command
from ..protocol.tmframe import Clcw


class FarmState(IntEnum):
    OPEN = 1      # S1
    WAIT = 2      # S2
    LOCKOUT = 3   # S3


class FarmEvent(IntEnum):
    AD_IN_SEQUENCE = 1          # E1: N(S) = V(R), buffer available
    AD_NO_BUFFER = 2            # E2: N(S) = V(R), no buffer
    AD_POSITIVE_WINDOW = 3      # E3
    AD_NEGATIVE_WINDOW = 4      # E4
    AD_LOCKOUT_AREA = 5         # E5
    BD = 6                      # E6
    UNLOCK = 7                  # E7
    SET_VR = 8                  # E8
    INVALID = 9                 # E9
    BUFFER_RELEASE = 10         # E10


class DiscardReason:
    """Why FARM-1 discarded a frame (stable strings for telemetry)."""

    NO_BUFFER = "no_buffer"              # E2 in Open: the delivery buffer is full (enters Wait)
    WAIT = "wait"                        # AD frame received in Wait
    POSITIVE_WINDOW = "positive_window"  # E3: ahead of V(R), a frame was lost
    NEGATIVE_WINDOW = "negative_window"  # E4: already accepted
    LOCKOUT_AREA = "lockout_area"        # E5: outside the window, enters Lockout
    LOCKOUT = "lockout"                  # AD frame received in Lockout
    INVALID = "invalid"                  # E9 (frame checks failed; the caller counts the precise reason)
    BAD_CONTROL = "bad_control"          # BC frame that is neither Unlock nor Set V(R)

    ALL: Final = ("no_buffer", "wait", "positive_window", "negative_window", "lockout_area", "lockout",
                  "invalid", "bad_control")


# Actions: "accept" pass the frame data unit on, "discard:<reason>", "vr+1", "R=0", "R=1", "W=0", "W=1",
# "L=0", "L=1", "B+1" (FARM-B counter), "VR=V*" (from a Set V(R) directive), "unlock" (Lockout off; Wait
# decides the next state).
_S1, _S2, _S3 = FarmState.OPEN, FarmState.WAIT, FarmState.LOCKOUT
E = FarmEvent
TABLE: Final[dict[FarmState, dict[FarmEvent, tuple[tuple[str, ...], FarmState]]]] = {
    _S1: {
        E.AD_IN_SEQUENCE: (("accept", "vr+1", "R=0"), _S1),
        E.AD_NO_BUFFER: (("discard:no_buffer", "R=1", "W=1"), _S2),
        E.AD_POSITIVE_WINDOW: (("discard:positive_window", "R=1"), _S1),
        E.AD_NEGATIVE_WINDOW: (("discard:negative_window",), _S1),
        E.AD_LOCKOUT_AREA: (("discard:lockout_area", "L=1"), _S3),
        E.BD: (("accept", "B+1"), _S1),
        E.UNLOCK: (("B+1", "R=0"), _S1),
        E.SET_VR: (("B+1", "R=0", "VR=V*"), _S1),
        E.INVALID: (("discard:invalid",), _S1),
        E.BUFFER_RELEASE: (("W=0",), _S1),
    },
    _S2: {
        # E1 cannot normally happen in Wait (the buffer is full); discard it like E2 rather than fail
        E.AD_IN_SEQUENCE: (("discard:wait",), _S2),
        E.AD_NO_BUFFER: (("discard:wait",), _S2),
        E.AD_POSITIVE_WINDOW: (("discard:wait",), _S2),
        E.AD_NEGATIVE_WINDOW: (("discard:negative_window",), _S2),
        E.AD_LOCKOUT_AREA: (("discard:lockout_area", "L=1"), _S3),
        E.BD: (("accept", "B+1"), _S2),
        E.UNLOCK: (("B+1", "R=0", "W=0"), _S1),
        E.SET_VR: (("B+1", "R=0", "W=0", "VR=V*"), _S1),
        E.INVALID: (("discard:invalid",), _S2),
        E.BUFFER_RELEASE: (("W=0",), _S1),
    },
    _S3: {
        E.AD_IN_SEQUENCE: (("discard:lockout",), _S3),
        E.AD_NO_BUFFER: (("discard:lockout",), _S3),
        E.AD_POSITIVE_WINDOW: (("discard:lockout",), _S3),
        E.AD_NEGATIVE_WINDOW: (("discard:lockout",), _S3),
        E.AD_LOCKOUT_AREA: (("discard:lockout",), _S3),
        E.BD: (("accept", "B+1"), _S3),
        E.UNLOCK: (("B+1", "R=0", "unlock"), _S1),
        E.SET_VR: (("B+1",), _S3),
        E.INVALID: (("discard:invalid",), _S3),
        E.BUFFER_RELEASE: (("W=0",), _S3),
    },
}


def _compile(actions: tuple[str, ...], nxt: FarmState) -> tuple:
    """One row of TABLE as flags: (accept, discard reason, V(R)+1, R, W, L=1, FARM-B+1, V(R)=V*, unlock, next)."""
    known = {"accept", "vr+1", "R=0", "R=1", "W=0", "W=1", "L=1", "B+1", "VR=V*", "unlock"}
    for a in actions:
        if a not in known and not a.startswith("discard:"):
            raise ValueError(f"unknown FARM-1 action {a!r}")
    discard = next((a[8:] for a in actions if a.startswith("discard:")), None)
    r = True if "R=1" in actions else (False if "R=0" in actions else None)
    w = True if "W=1" in actions else (False if "W=0" in actions else None)
    return ("accept" in actions, discard, "vr+1" in actions, r, w, "L=1" in actions, "B+1" in actions,
            "VR=V*" in actions, "unlock" in actions, nxt)


_COMPILED: Final = {s: {e: _compile(*row) for e, row in rows.items()} for s, rows in TABLE.items()}


def check_window(w: int) -> int:
    """W must be even and 2 <= W <= 254 (232.1-B-2 section 6.1.8.2)."""
    if not isinstance(w, int) or isinstance(w, bool) or w % 2 or not 2 <= w <= 254:
        raise ValueError(f"FARM-1 sliding window width W={w!r} must be even and within 2..254")
    return w


class Delivered(NamedTuple):
    """A frame data unit passed to the higher procedures: ``kind`` is ``AD`` or ``BD``."""

    kind: str
    data: bytes
    seq: int


class FarmResult(NamedTuple):
    event: FarmEvent
    accepted: bool
    reason: str | None = None


class Farm1:
    """FARM-1 for one virtual channel.  ``receive(frame)`` never raises for any frame content."""

    def __init__(self, vcid: int, window: int = 10, buffer_size: int = 16, vr: int = 0) -> None:
        if not 0 <= vcid <= 63:
            raise ValueError(f"virtual channel id {vcid} outside 0..63")
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.vcid = vcid
        self.window = check_window(window)
        self.pw = window // 2
        self.nw = window // 2
        self.buffer_size = buffer_size
        self.state = FarmState.OPEN
        self.vr = vr & 0xFF
        self.lockout = False
        self.wait = False
        self.retransmit = False
        self.farm_b = 0
        self._out: deque[Delivered] = deque()
        self._ad_buffered = 0
        self.events: Counter[FarmEvent] = Counter()
        self.discarded: Counter[str] = Counter()
        self.accepted = Counter({FrameType.AD: 0, FrameType.BD: 0, FrameType.BC: 0})
        self.lockouts = 0

    # -- classification ------------------------------------------------------------
    def window_area(self, ns: int) -> FarmEvent:
        """The event a valid AD frame with N(S) = ``ns`` would be, given V(R) and the buffer."""
        d = (ns - self.vr) & 0xFF
        if d == 0:
            return FarmEvent.AD_IN_SEQUENCE if self._ad_buffered < self.buffer_size else FarmEvent.AD_NO_BUFFER
        if d <= self.pw - 1:
            return FarmEvent.AD_POSITIVE_WINDOW
        if d >= 256 - self.nw:
            return FarmEvent.AD_NEGATIVE_WINDOW
        return FarmEvent.AD_LOCKOUT_AREA

    def classify(self, frame: TcFrame) -> tuple[FarmEvent, int | None]:
        kind = frame.kind
        if kind == FrameType.AD:
            return self.window_area(frame.seq), None
        if kind == FrameType.BD:
            return FarmEvent.BD, None
        cmd = parse_control_command(frame.data)
        if cmd is None:
            return FarmEvent.INVALID, None
        return (FarmEvent.UNLOCK, None) if cmd[0] == "unlock" else (FarmEvent.SET_VR, cmd[1])

    # -- events --------------------------------------------------------------------
    def receive(self, frame: TcFrame) -> FarmResult:
        """A frame that passed the frame checks (version, length, FECF, spacecraft and channel ids)."""
        if frame.vcid != self.vcid:
            return self.invalid("vcid")
        event, vstar = self.classify(frame)
        if event is FarmEvent.INVALID:
            return self._apply(event, frame, None, DiscardReason.BAD_CONTROL)
        return self._apply(event, frame, vstar)

    def invalid(self, reason: str = DiscardReason.INVALID) -> FarmResult:
        """E9: a frame failed the checks before FARM-1 (counted here under ``reason`` too)."""
        return self._apply(FarmEvent.INVALID, None, None, reason)

    def buffer_release(self) -> FarmResult:
        """E10: the higher procedures took data out of the buffer."""
        return self._apply(FarmEvent.BUFFER_RELEASE, None, None)

    def _apply(self, event: FarmEvent, frame: TcFrame | None, vstar: int | None,
               reason_override: str | None = None) -> FarmResult:
        self.events[event] += 1
        accept, discard, vr_inc, r_flag, w_flag, l_set, b_inc, set_vr, unlock, nxt = _COMPILED[self.state][event]
        reason = None
        if accept:
            assert frame is not None
            kind = frame.kind
            self.accepted[kind] += 1
            self._out.append(Delivered(kind, frame.data, frame.seq))
            if kind == FrameType.AD:
                self._ad_buffered += 1
        if discard is not None:
            reason = reason_override or discard
            self.discarded[reason] += 1
        if vr_inc:
            self.vr = (self.vr + 1) & 0xFF
        if r_flag is not None:
            self.retransmit = r_flag
        if w_flag is not None:
            self.wait = w_flag
        if l_set:
            self.lockout = True
            self.lockouts += 1
        if b_inc:
            self.farm_b = (self.farm_b + 1) & 3
            if frame is not None and frame.bypass and frame.control:
                self.accepted[FrameType.BC] += 1
        if set_vr:
            self.vr = (vstar or 0) & 0xFF
        if unlock:
            self.lockout = False
            if self.wait:
                nxt = FarmState.WAIT
        self.state = nxt
        return FarmResult(event, accept, reason)

    # -- higher procedures -------------------------------------------------------------
    def take(self) -> list[Delivered]:
        """Everything delivered so far, in order; frees the buffer (E10 if FARM-1 was waiting)."""
        out = list(self._out)
        self._out.clear()
        self._ad_buffered = 0
        if self.wait:
            self.buffer_release()
        return out

    @property
    def buffered(self) -> int:
        return self._ad_buffered

    def clcw(self, no_rf: bool = False, no_bitlock: bool = False, status: int = 0) -> Clcw:
        return Clcw(vcid=self.vcid, report_value=self.vr, lockout=self.lockout, wait=self.wait,
                    retransmit=self.retransmit, farm_b=self.farm_b, no_rf=no_rf, no_bitlock=no_bitlock,
                    status=status)

    # -- durable state -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"vr": self.vr, "lockout": self.lockout, "farm_b": self.farm_b}

    def restore(self, rec: dict[str, Any] | None) -> None:
        """Come back after a restart: V(R) and Lockout are kept, Wait and Retransmit start clear."""
        if not rec:
            return
        vr = rec.get("vr")
        if isinstance(vr, int) and 0 <= vr <= 255:
            self.vr = vr
        self.lockout = bool(rec.get("lockout", False))
        fb = rec.get("farm_b")
        if isinstance(fb, int):
            self.farm_b = fb & 3
        self.state = FarmState.LOCKOUT if self.lockout else FarmState.OPEN

    def stats(self) -> dict[str, int]:
        d = {"state": int(self.state), "vr": self.vr, "lockout": int(self.lockout), "wait": int(self.wait),
             "retransmit": int(self.retransmit), "farm_b": self.farm_b, "lockouts": self.lockouts,
             "accepted_ad": self.accepted[FrameType.AD], "accepted_bd": self.accepted[FrameType.BD],
             "accepted_bc": self.accepted[FrameType.BC]}
        for r in DiscardReason.ALL:
            d[f"discard_{r}"] = self.discarded.get(r, 0)
        return d
