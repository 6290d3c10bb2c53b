"""FOP-1, the sending end of COP-1 (CCSDS 232.1-B-2 section 5), and the ground's COP-1 management.

Pure code: no clock, no I/O.  Time comes in as ``now``; the T1 timer is a
deadline that the runner honours through :meth:`Fop1.next_deadline` and
:meth:`Fop1.run_due`.  Frames to send come out of :meth:`Fop1.take_frames`,
notifications to the higher procedures out of :meth:`Fop1.take_notices`.

States: S1 Active, S2 Retransmit without wait, S3 Retransmit with wait,
S4 Initialising without BC frame, S5 Initialising with BC frame, S6 Initial.
A received CLCW is classified into one event of the standard (E1-E14 and
E101-E103), timer expiry into E16/E104/E17/E18, and ``CLCW_TABLE[state][event]``
gives the actions and the next state.  Requests and directives (E19-E39)
are methods.  Two simplifications, both documented in ``docs/spacelink.md``:

* The lower procedures accept every frame at once (there is no AD/BC/BD
  "out ready" hand-shake): "Look for FDU" sends every frame marked for
  retransmission, then as many new frames as the window K allows.
* The Wait_Queue holds up to ``max_wait`` FDUs (the standard's value is 1).

:class:`CopUplink` is the management layer above FOP-1 that the ground
actually uses.  It keeps an unbounded backlog of FDUs, (re)initialises the
AD service from the first fresh CLCW, and recovers from every alert
*without repeating a telecommand*: after an alert it waits ``settle_s``
(long enough for any frame still on the link to land), then reads V(R) from
a CLCW that arrived after that.  Every FDU keeps the N(S) it was last sent
with until it is known to be delivered, so the unconfirmed FDUs that were
ever sent sit at the head of the backlog with consecutive N(S): those below
V(R) were delivered, the others go again with the very same N(S) (V(S) is
set to V(R)), and a copy still travelling on the link can only ever be
accepted for the FDU it carries.  The AD service restarts with an Unlock
when the CLCW shows Lockout, Wait or Retransmit (an Unlock never moves
V(R)).  If V(R) is outside the numbers those FDUs were sent with (the FARM
was reset or set by someone else) they are reported ``indeterminate`` and
*not* resent.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from fsw.protocol.tcframe import MAX_TC_DATA_LEN, TcFrame
from fsw.protocol.tmframe import Clcw


class FopState(IntEnum):
    ACTIVE = 1                       # S1
    RETRANSMIT_WITHOUT_WAIT = 2      # S2
    RETRANSMIT_WITH_WAIT = 3         # S3
    INITIALISING_WITHOUT_BC = 4      # S4
    INITIALISING_WITH_BC = 5         # S5
    INITIAL = 6                      # S6


class Alert:
    """Alert codes (232.1-B-2 section 5.2.15)."""

    LIMIT = "limit"        # transmission limit reached
    T1 = "t1"              # timer expired with the limit reached (or while initialising)
    LOCKOUT = "lockout"    # CLCW shows Lockout
    SYNCH = "synch"        # CLCW inconsistent with what was sent
    NN_R = "nn_r"          # N(R) outside NN(R)..V(S)
    CLCW = "clcw"          # CLCW with Wait set but not Retransmit
    TERM = "term"          # Terminate AD service directive


@dataclass(frozen=True, slots=True)
class FopNotice:
    """A response or indication to the higher procedures.

    ``kind``: ``accept`` / ``reject`` (request to transfer an FDU),
    ``positive`` / ``negative`` (confirm: acknowledged / purged before
    acknowledgement), ``alert``, ``suspend``, ``init_done`` (an initiate-AD
    directive completed).  ``ns`` is the frame sequence number of an AD FDU
    once it has one.
    """

    kind: str
    fdu_id: int | None = None
    ns: int | None = None
    code: str | None = None


@dataclass(slots=True)
class _Sent:
    fdu_id: int
    ns: int
    frame: bytes
    retransmit: bool = False


# CLCW events (numbering of 232.1-B-2 table 5-1)
E1, E2, E3, E4, E5, E6, E7, E8, E9, E10, E11, E12, E13, E14 = range(1, 15)
E101, E102, E103 = 101, 102, 103
# timer events
E16, E104, E17, E18 = 16, 104, 17, 18

_S1, _S2, _S3, _S4, _S5, _S6 = (FopState(i) for i in range(1, 7))

_A = tuple  # readability: an action list


def _row(**kw: tuple[_A, FopState | None]) -> dict[int, tuple[_A, FopState | None]]:
    return {int(k[1:]): v for k, v in kw.items()}


# actions: remove (acknowledged frames), cancel (timer), look (for FDU), retx (initiate AD retransmission),
# bc_retx, confirm_init, release_bc, set_nnr, alert:<code>, suspend.  Next state None = unchanged.
_ALERT_CLCW = (("alert:" + Alert.CLCW,), _S6)
_ALERT_SYNCH = (("alert:" + Alert.SYNCH,), _S6)
_ALERT_LIMIT = (("alert:" + Alert.LIMIT,), _S6)
_ALERT_NNR = (("alert:" + Alert.NN_R,), _S6)
_ALERT_LOCKOUT = (("alert:" + Alert.LOCKOUT,), _S6)
_ALERT_T1 = (("alert:" + Alert.T1,), _S6)
_IGNORE = ((), None)

CLCW_TABLE: Final[dict[FopState, dict[int, tuple[tuple[str, ...], FopState | None]]]] = {
    _S1: {E1: _IGNORE, E2: (("remove", "cancel", "look"), _S1), E3: _ALERT_CLCW, E4: _ALERT_SYNCH,
          E5: _IGNORE, E6: (("remove", "look"), _S1), E7: _ALERT_CLCW,
          E101: (("remove", "alert:" + Alert.LIMIT), _S6), E102: _ALERT_LIMIT,
          E8: (("remove", "retx", "look"), _S2), E9: (("remove",), _S3), E10: (("retx", "look"), _S2),
          E11: ((), _S3), E12: ((), _S2), E103: ((), _S3), E13: _ALERT_NNR, E14: _ALERT_LOCKOUT,
          E16: (("retx", "look"), _S1), E104: (("retx", "look"), _S1), E17: _ALERT_T1,
          E18: (("suspend",), _S6)},
    _S2: {E1: _ALERT_SYNCH, E2: (("remove", "cancel", "look"), _S1), E3: _ALERT_CLCW, E4: _ALERT_SYNCH,
          E5: _ALERT_SYNCH, E6: (("remove", "look"), _S1), E7: _ALERT_CLCW,
          E101: (("remove", "alert:" + Alert.LIMIT), _S6), E102: _ALERT_LIMIT,
          E8: (("remove", "retx", "look"), _S2), E9: (("remove",), _S3), E10: _IGNORE,
          E11: ((), _S3), E12: _IGNORE, E103: ((), _S3), E13: _ALERT_NNR, E14: _ALERT_LOCKOUT,
          E16: (("retx", "look"), _S2), E104: (("retx", "look"), _S2), E17: _ALERT_T1,
          E18: (("suspend",), _S6)},
    _S3: {E1: _ALERT_SYNCH, E2: (("remove", "cancel", "look"), _S1), E3: _ALERT_CLCW, E4: _ALERT_SYNCH,
          E5: _ALERT_SYNCH, E6: (("remove", "look"), _S1), E7: _ALERT_CLCW,
          E101: (("remove", "alert:" + Alert.LIMIT), _S6), E102: _ALERT_LIMIT,
          E8: (("remove", "retx", "look"), _S2), E9: (("remove",), _S3), E10: (("retx", "look"), _S2),
          E11: _IGNORE, E12: ((), _S2), E103: _IGNORE, E13: _ALERT_NNR, E14: _ALERT_LOCKOUT,
          E16: _IGNORE, E104: _IGNORE, E17: _ALERT_T1, E18: (("suspend",), _S6)},
    _S4: {E1: (("confirm_init", "cancel"), _S1), E2: (("set_nnr", "confirm_init", "cancel"), _S1),
          E3: _ALERT_CLCW, E4: _ALERT_SYNCH,
          **{e: _IGNORE for e in (E5, E6, E7, E101, E102, E8, E9, E10, E11, E12, E103)},
          E13: _ALERT_NNR, E14: _ALERT_LOCKOUT,
          E16: _ALERT_T1, E104: (("suspend",), _S6), E17: _ALERT_T1, E18: (("suspend",), _S6)},
    _S5: {E1: (("confirm_init", "release_bc", "cancel"), _S1),
          E2: (("set_nnr", "confirm_init", "release_bc", "cancel"), _S1),
          E3: _ALERT_CLCW,
          **{e: _IGNORE for e in (E4, E5, E6, E7, E101, E102, E8, E9, E10, E11, E12, E103, E13, E14)},
          E16: (("bc_retx",), _S5), E104: (("bc_retx",), _S5), E17: _ALERT_T1, E18: _ALERT_T1},
    _S6: {e: _IGNORE for e in (E1, E2, E3, E4, E5, E6, E7, E101, E102, E8, E9, E10, E11, E12, E103, E13, E14,
                               E16, E104, E17, E18)},
}


def _in_range(x: int, lo: int, hi: int) -> bool:
    """lo <= x <= hi on the mod-256 circle, walking up from lo."""
    return ((x - lo) & 0xFF) <= ((hi - lo) & 0xFF)


class Fop1:
    """FOP-1 for one TC virtual channel."""

    def __init__(self, scid: int, vcid: int, window: int = 5, t1: float = 10.0, tx_limit: int = 5,
                 timeout_type: int = 0, max_wait: int = 1) -> None:
        self.scid = scid
        self.vcid = vcid
        self._check_params(window, t1, tx_limit, timeout_type)
        if max_wait < 1:
            raise ValueError("max_wait must be at least 1")
        self.k = window
        self.t1 = t1
        self.tx_limit = tx_limit
        self.timeout_type = timeout_type
        self.max_wait = max_wait
        self.state = FopState.INITIAL
        self.vs = 0
        self.nnr = 0
        self.transmission_count = 1
        self.suspend_state = 0
        self.sent: deque[_Sent] = deque()
        self.wait_queue: deque[tuple[int, bytes]] = deque()
        self._bc: bytes | None = None
        self._deadline: float | None = None
        self._frames: list[bytes] = []
        self._notices: list[FopNotice] = []
        self._next_id = 0
        self.events: Counter[int] = Counter()
        self.alerts: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    @staticmethod
    def _check_params(window: int, t1: float, tx_limit: int, timeout_type: int) -> None:
        if not isinstance(window, int) or not 1 <= window <= 255:
            raise ValueError(f"FOP sliding window K={window!r} outside 1..255")
        if not (t1 > 0 and math.isfinite(t1)):
            raise ValueError(f"T1 must be positive and finite, got {t1!r}")
        if not isinstance(tx_limit, int) or tx_limit < 1:
            raise ValueError(f"transmission limit {tx_limit!r} must be at least 1")
        if timeout_type not in (0, 1):
            raise ValueError(f"timeout type {timeout_type!r} must be 0 or 1")

    # -- outputs -------------------------------------------------------------------------
    def take_frames(self) -> list[bytes]:
        out = self._frames
        self._frames = []
        return out

    def take_notices(self) -> list[FopNotice]:
        out = self._notices
        self._notices = []
        return out

    def next_deadline(self) -> float:
        return self._deadline if self._deadline is not None else math.inf

    @property
    def outstanding(self) -> int:
        """AD frames sent and not yet acknowledged."""
        return len(self.sent)

    def can_accept(self) -> bool:
        return self.state in (_S1, _S2, _S3) and len(self.wait_queue) < self.max_wait

    @property
    def window_open(self) -> bool:
        """A new FDU requested now would be transmitted at once."""
        return self.state in (_S1, _S2) and not self.wait_queue and ((self.vs - self.nnr) & 0xFF) < self.k

    # -- requests (E19-E22) ----------------------------------------------------------------
    def request_ad(self, data: bytes, now: float, fdu_id: int | None = None) -> int | None:
        """Request to transfer an FDU with sequence control.  Returns its id, or None if rejected."""
        if not 1 <= len(data) <= MAX_TC_DATA_LEN:
            raise ValueError(f"an FDU is 1..{MAX_TC_DATA_LEN} octets, got {len(data)}")
        if fdu_id is None:
            fdu_id = self._next_id
            self._next_id += 1
        if not self.can_accept():   # E20, or S4-S6
            self._notices.append(FopNotice("reject", fdu_id))
            self.counters["rejected"] += 1
            return None
        self.wait_queue.append((fdu_id, bytes(data)))   # E19
        if self.state in (_S1, _S2):
            self._look_for_fdu(now)
        return fdu_id

    def request_bd(self, data: bytes, now: float) -> None:
        """Expedited (bypass) transfer: sent at once, in every state, with no sequence control."""
        self._frames.append(TcFrame.bd(self.scid, self.vcid, data).pack())
        self.counters["bd_frames"] += 1

    # -- directives (E23-E39) ---------------------------------------------------------------
    def _initialise(self) -> None:
        self._purge_sent()
        self._purge_wait()
        self.transmission_count = 1
        self.suspend_state = 0
        self._bc = None

    def init_ad_without_clcw(self, now: float) -> bool:
        if self.state != _S6:
            return self._directive_rejected()
        self._initialise()
        self.state = _S1
        self._notices.append(FopNotice("init_done"))
        return True

    def init_ad_with_clcw(self, now: float) -> bool:
        if self.state != _S6:
            return self._directive_rejected()
        self._initialise()
        self._restart_timer(now)
        self.state = _S4
        return True

    def init_ad_with_unlock(self, now: float) -> bool:
        if self.state != _S6:
            return self._directive_rejected()
        self._initialise()
        self._transmit_bc(TcFrame.unlock(self.scid, self.vcid).pack(), now)
        self.state = _S5
        return True

    def init_ad_with_set_vr(self, vr: int, now: float) -> bool:
        if self.state != _S6:
            return self._directive_rejected()
        if not 0 <= vr <= 255:
            raise ValueError(f"V(R) {vr} outside 0..255")
        self._initialise()
        self.vs = self.nnr = vr
        self._transmit_bc(TcFrame.set_vr(self.scid, self.vcid, vr).pack(), now)
        self.state = _S5
        return True

    def terminate(self, now: float) -> bool:
        if self.state != _S6:
            self._alert(Alert.TERM)
            self.state = _S6
        return True

    def resume(self, now: float) -> bool:
        if self.state != _S6 or self.suspend_state == 0:
            return self._directive_rejected()
        self.state = FopState(self.suspend_state)
        self.suspend_state = 0
        self._restart_timer(now)
        return True

    def set_vs(self, vs: int) -> bool:
        if self.state != _S6 or self.suspend_state != 0:
            return self._directive_rejected()
        if not 0 <= vs <= 255:
            raise ValueError(f"V(S) {vs} outside 0..255")
        self.vs = self.nnr = vs
        return True

    def set_params(self, window: int | None = None, t1: float | None = None, tx_limit: int | None = None,
                   timeout_type: int | None = None) -> bool:
        k = self.k if window is None else window
        t = self.t1 if t1 is None else t1
        lim = self.tx_limit if tx_limit is None else tx_limit
        tt = self.timeout_type if timeout_type is None else timeout_type
        self._check_params(k, t, lim, tt)
        self.k, self.t1, self.tx_limit, self.timeout_type = k, t, lim, tt
        return True

    def _directive_rejected(self) -> bool:
        self.counters["directives_rejected"] += 1
        return False

    # -- CLCW and timer -------------------------------------------------------------------
    def classify_clcw(self, c: Clcw) -> int:
        if c.lockout:
            return E14
        nr = c.report_value
        if nr == self.vs:
            if c.retransmit:
                return E4
            if c.wait:
                return E3
            return E1 if nr == self.nnr else E2
        if not _in_range(nr, self.nnr, self.vs):
            return E13
        if not c.retransmit:
            if c.wait:
                return E7
            return E5 if nr == self.nnr else E6
        if self.tx_limit == 1:
            return E101 if nr != self.nnr else E102
        if nr != self.nnr:
            return E9 if c.wait else E8
        if self.transmission_count < self.tx_limit:
            return E11 if c.wait else E10
        return E103 if c.wait else E12

    def on_clcw(self, c: Clcw, now: float) -> int | None:
        """Process a CLCW; returns the event number (None when the CLCW is not for this channel)."""
        if c.cop_in_effect != 1 or c.vcid != self.vcid:
            self.counters["clcw_ignored"] += 1
            return None
        ev = self.classify_clcw(c)
        self._run(ev, c, now)
        return ev

    def run_due(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        if self.transmission_count < self.tx_limit:
            ev = E16 if self.timeout_type == 0 else E104
        else:
            ev = E17 if self.timeout_type == 0 else E18
        self.counters["t1_expired"] += 1
        self._run(ev, None, now)

    def _run(self, ev: int, c: Clcw | None, now: float) -> None:
        self.events[ev] += 1
        state = self.state
        actions, nxt = CLCW_TABLE[state][ev]
        for a in actions:
            if a == "remove":
                assert c is not None
                self._remove_acked(c.report_value)
            elif a == "cancel":
                self._deadline = None
            elif a == "look":
                pass  # done once the state is updated, below
            elif a == "retx":
                self._initiate_retransmission(now)
            elif a == "bc_retx":
                self.transmission_count += 1
                self._restart_timer(now)
                if self._bc is not None:
                    self._frames.append(self._bc)
                    self.counters["bc_retransmissions"] += 1
            elif a == "confirm_init":
                self._notices.append(FopNotice("init_done"))
            elif a == "release_bc":
                self._bc = None
            elif a == "set_nnr":
                assert c is not None
                self.nnr = c.report_value
            elif a.startswith("alert:"):
                self._alert(a[6:])
            elif a == "suspend":
                self.suspend_state = int(state)
                self._deadline = None
                self._notices.append(FopNotice("suspend"))
                self.counters["suspends"] += 1
        if nxt is not None:
            self.state = nxt
        if "look" in actions:
            self._look_for_fdu(now)

    # -- actions ---------------------------------------------------------------------------
    def _restart_timer(self, now: float) -> None:
        self._deadline = now + self.t1

    def _transmit_ad(self, fdu_id: int, data: bytes, now: float) -> None:
        frame = TcFrame.ad(self.scid, self.vcid, self.vs, data).pack()
        if not self.sent:
            self.transmission_count = 1
        self.sent.append(_Sent(fdu_id, self.vs, frame))
        self.vs = (self.vs + 1) & 0xFF
        self._restart_timer(now)
        self._frames.append(frame)
        self.counters["ad_frames"] += 1

    def _transmit_bc(self, frame: bytes, now: float) -> None:
        self._bc = frame
        self.transmission_count = 1
        self._restart_timer(now)
        self._frames.append(frame)
        self.counters["bc_frames"] += 1

    def _initiate_retransmission(self, now: float) -> None:
        self.transmission_count += 1
        self._restart_timer(now)
        for s in self.sent:
            s.retransmit = True

    def _look_for_fdu(self, now: float) -> None:
        if self.state not in (_S1, _S2, _S3):
            return
        for s in self.sent:
            if s.retransmit:
                s.retransmit = False
                self._frames.append(s.frame)
                self.counters["ad_retransmissions"] += 1
        while self.wait_queue and ((self.vs - self.nnr) & 0xFF) < self.k:
            fdu_id, data = self.wait_queue.popleft()
            self._notices.append(FopNotice("accept", fdu_id, self.vs))
            self._transmit_ad(fdu_id, data, now)

    def _remove_acked(self, nr: int) -> None:
        """Release every frame below N(R): the Sent_Queue runs from NN(R) up, and N(R) lies in NN(R)..V(S)."""
        removed = False
        while self.sent and self.sent[0].ns != nr:
            s = self.sent.popleft()
            self._notices.append(FopNotice("positive", s.fdu_id, s.ns))
            removed = True
        self.nnr = nr
        if removed:
            self.transmission_count = 1

    def _purge_sent(self) -> None:
        for s in self.sent:
            self._notices.append(FopNotice("negative", s.fdu_id, s.ns))
        self.sent.clear()

    def _purge_wait(self) -> None:
        for fdu_id, _ in self.wait_queue:
            self._notices.append(FopNotice("reject", fdu_id))
        self.wait_queue.clear()

    def _alert(self, code: str) -> None:
        self._deadline = None
        self._purge_sent()
        self._purge_wait()
        self._bc = None
        self.alerts[code] += 1
        self._notices.append(FopNotice("alert", code=code))

    def stats(self) -> dict[str, int]:
        d = {"state": int(self.state), "vs": self.vs, "nnr": self.nnr, "outstanding": len(self.sent),
             "waiting": len(self.wait_queue), "transmission_count": self.transmission_count}
        d.update(self.counters)
        for k, v in self.alerts.items():
            d[f"alert_{k}"] = v
        return d


# ---------------------------------------------------------------------------------------------
# Management: backlog, initialisation and recovery without repetition
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UplinkEvent:
    """``delivered`` (the FARM accepted the FDU), ``indeterminate`` (purged, outcome unknown, not
    resent), ``alert`` (``code`` set), ``initialised`` (AD service running again)."""

    kind: str
    fdu_id: int | None = None
    code: str | None = None


class CopUplink:
    """Reliable, in-order, no-repeat telecommand uplink over one FOP-1.  See the module docstring."""

    SYNC = "sync"            # waiting for a fresh CLCW to (re)initialise
    RUNNING = "running"      # FOP-1 in S1-S5
    SETTLING = "settling"    # after an alert: let frames still on the link land
    SUSPENDED = "suspended"  # FOP-1 suspended (timeout type 1): resume at the next CLCW

    def __init__(self, fop: Fop1, settle_s: float = 10.0, start: float = 0.0) -> None:
        self.fop = fop
        self.settle_s = settle_s
        self.phase = self.SYNC
        self._sync_after = start
        self._settle_until: float | None = None
        self.backlog: deque[tuple[int, bytes]] = deque()
        self._data: dict[int, bytes] = {}
        self._ns: dict[int, int] = {}
        self._limbo: list[int] = []
        self._events: list[UplinkEvent] = []
        self._next_id = 0
        self.delivered = 0
        self.indeterminate = 0
        self.recoveries = 0
        self.last_clcw: Clcw | None = None

    # -- higher layer --------------------------------------------------------------------------
    def submit(self, fdu: bytes, now: float) -> int:
        """Queue an FDU for sequence-controlled transfer; returns its id."""
        if not 1 <= len(fdu) <= MAX_TC_DATA_LEN:
            raise ValueError(f"an FDU is 1..{MAX_TC_DATA_LEN} octets, got {len(fdu)}")
        fid = self._next_id
        self._next_id += 1
        self.backlog.append((fid, bytes(fdu)))
        self._data[fid] = bytes(fdu)
        self._feed(now)
        return fid

    def submit_bd(self, fdu: bytes, now: float) -> None:
        self.fop.request_bd(fdu, now)

    def take_frames(self) -> list[bytes]:
        return self.fop.take_frames()

    def take_events(self) -> list[UplinkEvent]:
        out = self._events
        self._events = []
        return out

    @property
    def pending(self) -> int:
        """FDUs not yet known to be delivered (backlog, wait queue, sent queue, limbo)."""
        return len(self._data)

    def next_deadline(self) -> float:
        t = self.fop.next_deadline()
        if self.phase == self.SETTLING and self._settle_until is not None:
            t = min(t, self._settle_until)
        return t

    def run_due(self, now: float) -> None:
        self.fop.run_due(now)
        self._handle_notices(now)
        if self.phase == self.SETTLING and self._settle_until is not None and now >= self._settle_until:
            self.phase = self.SYNC
            self._sync_after = self._settle_until
            self._settle_until = None
        self._feed(now)

    def on_clcw(self, c: Clcw, now: float) -> None:
        if c.cop_in_effect != 1 or c.vcid != self.fop.vcid:
            return
        self.last_clcw = c
        if self.phase == self.SYNC:
            if now >= self._sync_after and self.fop.state == FopState.INITIAL:
                self._synchronise(c, now)
        elif self.phase == self.SUSPENDED:
            self.phase = self.RUNNING
            self.fop.resume(now)
            self.fop.on_clcw(c, now)
        elif self.phase == self.RUNNING:
            self.fop.on_clcw(c, now)
        self._handle_notices(now)
        self._feed(now)

    # -- internals ------------------------------------------------------------------------------
    def _feed(self, now: float) -> None:
        fop = self.fop
        while self.phase == self.RUNNING and self.backlog and fop.can_accept():
            fid, data = self.backlog.popleft()
            fop.request_ad(data, now, fid)
            self._handle_notices(now)

    def _handle_notices(self, now: float) -> None:
        for n in self.fop.take_notices():
            if n.kind == "accept" and n.fdu_id is not None:
                self._ns[n.fdu_id] = n.ns  # type: ignore[assignment]
            elif n.kind == "positive" and n.fdu_id is not None:
                self._delivered(n.fdu_id)
            elif n.kind in ("negative", "reject") and n.fdu_id is not None:
                if n.fdu_id in self._data:
                    self._limbo.append(n.fdu_id)
            elif n.kind == "alert":
                self._events.append(UplinkEvent("alert", code=n.code))
                self.phase = self.SETTLING
                self._settle_until = now + self.settle_s
            elif n.kind == "suspend":
                self.phase = self.SUSPENDED
            elif n.kind == "init_done":
                self._events.append(UplinkEvent("initialised"))

    def _delivered(self, fid: int) -> None:
        if self._data.pop(fid, None) is not None:
            self._ns.pop(fid, None)
            self.delivered += 1
            self._events.append(UplinkEvent("delivered", fid))

    def _synchronise(self, c: Clcw, now: float) -> None:
        """(Re)start the AD service from a CLCW that reflects every frame sent before the alert.

        Every FDU keeps the N(S) it was last sent with until it is known to be
        delivered, and FDUs are always sent in order, so the not-yet-confirmed
        FDUs that were ever sent sit at the head of the backlog with
        consecutive N(S) from ``base``.  N(R) = ``base + j`` says the first ``j``
        of them were accepted; the others go again with the very same N(S),
        so even a copy still travelling on the link can only ever be accepted
        for the FDU it carries.
        """
        nr = c.report_value
        back = sorted(set(fid for fid in self._limbo if fid in self._data))
        self._limbo = []
        for fid in reversed(back):
            self.backlog.appendleft((fid, self._data[fid]))
        head: list[int] = []
        for fid, _ in self.backlog:
            ns = self._ns.get(fid)
            if ns is None or (head and ns != (self._ns[head[0]] + len(head)) & 0xFF):
                break
            head.append(fid)
        if head:
            self.recoveries += 1
            base = self._ns[head[0]]
            accepted = (nr - base) & 0xFF
            if accepted <= len(head):
                for fid in head[:accepted]:
                    self.backlog.popleft()
                    self._delivered(fid)
            else:
                # V(R) is not where anything we sent could have put it: the outcome of these is unknown
                for fid in head:
                    self.backlog.popleft()
                    self._data.pop(fid, None)
                    self._ns.pop(fid, None)
                    self.indeterminate += 1
                    self._events.append(UplinkEvent("indeterminate", fid))
        fop = self.fop
        fop.set_vs(nr)
        if c.lockout or c.wait or c.retransmit:
            fop.init_ad_with_unlock(now)
        else:
            fop.init_ad_without_clcw(now)
        self.phase = self.RUNNING
        self._handle_notices(now)
