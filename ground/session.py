"""A ground link session: the I/O shell around the pure decoder, commanding and verification tracker.

One :class:`GroundSession` owns one serial link (any spec :class:`fsw.io.link.Link`
understands: a device, a pseudo-terminal path, ``socket://``, ``loop://`` ...).
It works in the caller's thread: every method that waits reads the link,
deframes, decodes, feeds the verification tracker and keeps the decoded
records in a bounded backlog, so nothing that arrives while a command is
being verified is lost to a later :meth:`packets` or :meth:`wait_for`.

>>> with GroundSession("run/ground.pty", load_dictionary()) as s:      # doctest: +SKIP
...     result = s.send("FSS_SET_MODE", mode="SCIENCE")
...     hk = s.wait_for(lambda r: r.get("name") == "FSS_HK", timeout=5)

With ``space_link=True`` the session speaks the far-side space link
(:class:`ground.spacelink.SpaceLinkGround`, docs/spacelink.md) instead of
ASM-framed packets: telecommands go up through COP-1 (FOP-1) as CLTUs, the
received octets are CADUs whose packets are reassembled and de-duplicated,
and the store-and-forward acknowledgements and retransmission requests go up
on their own.  Everything above (decoding, verification, the backlog) is the
same.  :meth:`close` first waits (up to ``drain_s``) until every telecommand
of the session is delivered, so that the next session's FOP-1 starts from a
FARM-1 that no frame of this one can still move.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterator, Mapping

from fsw.dictionary import Dictionary
from fsw.io.clock import RealClock
from fsw.protocol import Deframer, Dropped, PusTc, frame

from .commanding import GROUND_SOURCE_ID, SequenceCounter, build_tc, resolve_command
from .decoding import PacketDecoder, decode_dropped
from .verification import VerificationResult, VerificationTracker, VerificationUpdate

__all__ = ["GroundSession", "LinkUnavailable"]

DEFAULT_LINK = "run/ground.pty"


class LinkUnavailable(ConnectionError):
    """The link is not connected (no flight software at the other end, port missing ...)."""


#: added to a command's time-out over the space link: through the relays a round trip takes about 5 s,
#: and a telecommand frame lost on the way goes again after FOP-1's T1 (12 s)
SPACE_LINK_MARGIN_S = 20.0


class GroundSession:
    """Send verified telecommands and receive decoded telemetry over one link.

    ``link`` injects an already-made link object (tests, or a caller that
    shares one); otherwise one is made from ``link_spec``.  ``clock`` must
    have ``now()`` in mission seconds; the default is a :class:`RealClock`
    on the mission epoch.  ``space_link=True`` (or a ``space_link_config``,
    a :class:`ground.spacelink.GroundLinkConfig`) speaks the space link on
    the link, see the module docstring; ``drain_s`` bounds the wait for
    undelivered telecommands in :meth:`close`.  ``link_margin_s`` is added to a command's dictionary
    time-out when the caller gives none (default: :data:`SPACE_LINK_MARGIN_S` with the space link, else 0).
    """

    def __init__(self, link_spec: str, dictionary: Dictionary, baud: int = 115200, *, link: Any = None,
                 clock: Any = None, name: str = "ground", source_id: int = GROUND_SOURCE_ID, pace: bool = False,
                 on_event: Callable[..., None] | None = None, idle_flush_s: float = 0.2,
                 poll_interval_s: float = 0.1, connect_timeout_s: float = 2.0, backlog: int = 10000,
                 archive: Any = None, space_link: bool = False, space_link_config: Any = None,
                 drain_s: float = 10.0, link_margin_s: float | None = None) -> None:
        self.link_spec = link_spec
        self.link_margin_s = float(link_margin_s if link_margin_s is not None
                                   else SPACE_LINK_MARGIN_S if (space_link or space_link_config is not None) else 0.0)
        self.dictionary = dictionary
        self.clock = clock if clock is not None else RealClock(dictionary.epoch)
        self.decoder = PacketDecoder(dictionary)
        self.tracker = VerificationTracker(dictionary)
        self.seq = SequenceCounter()
        self.deframer = Deframer(max_packet=dictionary.max_packet)
        self.source_id = source_id
        self.idle_flush_s = idle_flush_s
        self.poll_interval_s = poll_interval_s
        self.connect_timeout_s = connect_timeout_s
        self._user_on_event = on_event
        self._backlog: deque[dict] = deque(maxlen=backlog)
        self._stores: dict[str, dict] = {}   # the lander's packet stores, from its STORAGE_HK reports
        self._last_rx = self.clock.now()
        self.stats = {"packets": 0, "errors": 0, "dropped_bytes": 0, "tc_sent": 0, "backlog_overflow": 0}
        #: the ground's end of the space link (``space_link=True``), else None
        self.space: Any = None
        self.drain_s = drain_s
        self._space_idle = True
        if space_link or space_link_config is not None:
            from .spacelink import GroundLinkConfig, SpaceLinkGround

            self.space = SpaceLinkGround(space_link_config or GroundLinkConfig(), make_tc=self._link_tc,
                                         start=self.clock.now())
        if link is None:
            from fsw.io.link import Link  # the serial adapter; imported here so pure users never need it
            link = Link(link_spec, name=name, baud=baud, pace=pace, on_event=self._on_link_event)
        self.link = link
        self._opened = False
        self.name = name
        #: an :class:`ground.archive.ArchiveWriter` that receives every packet and command, or None
        self.archive = archive

    # -- lifetime -------------------------------------------------------------------------------------------
    def open(self) -> "GroundSession":
        """Open the link (never raises for a missing port; see :attr:`connected`)."""
        if not self._opened:
            self.link.open()
            self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            if self.space is not None:
                self.drain(self.drain_s)
            self._opened = False
            self.link.close()

    def drain(self, timeout: float) -> bool:
        """Space link: poll until every telecommand sent is delivered (or ``timeout`` s); True if none is left.

        Nothing to wait for while no frame ever went up (FOP-1 had no CLCW yet: nothing can be in flight)."""
        if self.space is None:
            return True
        end = self.clock.now() + timeout
        while self.space.uplink_pending and self.space.counters["cltus"] and self.connected:
            remaining = end - self.clock.now()
            if remaining <= 0:
                break
            self.poll(min(remaining, self.poll_interval_s))
        return not self.space.uplink_pending

    def __enter__(self) -> "GroundSession":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return bool(getattr(self.link, "connected", False))

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Poll the link until it is connected or ``timeout`` (default ``connect_timeout_s``) passes."""
        self.open()
        end = self.clock.now() + (self.connect_timeout_s if timeout is None else timeout)
        while not self.connected:
            remaining = end - self.clock.now()
            if remaining <= 0:
                return False
            self.poll(min(remaining, self.poll_interval_s))
        return True

    def _on_link_event(self, *args: Any, **kwargs: Any) -> None:
        text = " ".join(str(a) for a in args)
        if kwargs:
            text += " " + " ".join(f"{k}={v}" for k, v in kwargs.items())
        self._push({"link_event": text.strip(), "link": self.link_spec})
        if self._user_on_event is not None:
            self._user_on_event(*args, **kwargs)

    # -- receiving ------------------------------------------------------------------------------------------
    def _push(self, rec: dict) -> None:
        if rec.get("name") == "STORAGE_HK":
            params = rec.get("params") or {}
            store = params.get("STORE_ID")
            if store is not None:
                self._stores[str(store)] = {"fill_pct": params.get("STORE_FILL"),
                                            "packets": params.get("STORE_PACKETS"), "at": rec.get("time")}
        if len(self._backlog) == self._backlog.maxlen:
            self.stats["backlog_overflow"] += 1
        self._backlog.append(rec)

    def poll(self, timeout: float = 0.0) -> list[dict]:
        """Read once (waiting up to ``timeout`` s), process what came, expire overdue telecommands.

        Returns the new records (they also go to the backlog that
        :meth:`packets` drains).
        """
        self.open()
        t0 = self.clock.now()
        if self.space is not None:
            timeout = max(0.0, min(timeout, self.space.next_deadline() - t0))
        try:
            data = self.link.read(timeout)
        except OSError:
            data = b""
        now = self.clock.now()
        if self.space is not None:
            items: list = self._space_receive(data, now)
        elif data:
            self._last_rx = now
            items = self.deframer.feed(data)
        elif self.deframer.buffered and now - self._last_rx >= self.idle_flush_s:
            items = self.deframer.flush()  # a partial frame went stale on a quiet line
        else:
            items = []
        if not data and timeout > 0 and now - t0 < timeout / 2 and not self.connected:
            # a disconnected link may return at once: don't spin
            time.sleep(min(timeout, self.poll_interval_s))
        out = []
        for item in items:
            if type(item) is Dropped:
                rec = decode_dropped(item)
                rec["link"] = self.link_spec
                rec["rx_time"] = now
                self.stats["dropped_bytes"] += item.nbytes
                if self.archive is not None:
                    self.archive.add(b"", rec, now, self.link_spec)
            else:
                rec, _pkt = self.decoder.decode_packet(item, self.link_spec, now)
                self.stats["packets"] += 1
                if "error" in rec:
                    self.stats["errors"] += 1
                elif "request" in rec:
                    upd = self.tracker.add_record(rec, now)
                    if upd is not None and upd.result.command is not None:
                        rec["command"] = upd.result.command
                if self.archive is not None:
                    self.archive.add(item, rec, now, self.link_spec)
            out.append(rec)
            self._push(rec)
        for upd in self.tracker.expire(now):
            if self.archive is not None:
                self.archive.add_timeout(upd.result.apid, upd.result.seq_count, now)
        return out

    # -- the space link -----------------------------------------------------------------------------------------
    def _space_receive(self, data: bytes, now: float) -> list[bytes]:
        """CADU octets in, timers run, CLTUs out; returns the new packets (de-duplicated)."""
        sl = self.space
        if data:
            self._last_rx = now
            self._space_idle = False
            sl.receive(data, now)
        elif not self._space_idle and now - self._last_rx >= self.idle_flush_s:
            self._space_idle = True
            sl.line_idle(now)           # a partial CADU went stale on a quiet line
        if sl.next_deadline() <= now:
            sl.run_due(now)
        self._space_output()
        for e in sl.take_events():
            if e.kind == "delivered":
                continue
            what = f"uplink {e.kind}" + (f" {e.code}" if e.code else "") + \
                (f" (telecommand ticket {e.fdu_id})" if e.fdu_id is not None else "")
            self._push({"link_event": what, "link": self.link_spec})
        return [p for _vc, p in sl.take_packets()]

    def _space_output(self) -> None:
        for cltu in self.space.take_output():
            self.link.write(cltu)

    def _link_tc(self, name: str, args: dict) -> bytes:
        """Store-and-forward telecommands (acknowledgements, retransmission requests): failures reported only."""
        cmd = resolve_command(self.dictionary, name)
        tc = build_tc(self.dictionary, cmd.name, args, cmd.system, self.seq.peek(cmd.apid), self.source_id,
                      ack_flags=0)
        self.seq.advance(cmd.apid)
        return tc.pack()

    def default_timeout(self, cmd: Any) -> float:
        """How long to wait for a command's completion when the caller does not say: its dictionary
        time-out, plus the link margin (the far side's round trip and a COP-1 retransmission)."""
        return cmd.timeout_s + self.link_margin_s

    def link_status(self) -> dict[str, Any]:
        """Contact, COP-1 (FOP-1 state and counters) and the lander's packet stores as last reported."""
        out: dict[str, Any] = {"contact": self.connected, "space_link": self.space is not None,
                               "stores": dict(sorted(self._stores.items()))}
        if self.space is not None:
            from .spacelink import cop_status

            out.update(cop_status(self.space))
        return out

    def space_stats(self) -> dict[str, int]:
        """The space link's counters (empty without one)."""
        return self.space.stats() if self.space is not None else {}

    def packets(self, timeout: float | None = None, include_dropped: bool = True) -> Iterator[dict]:
        """Decoded records as they arrive (backlog first), until ``timeout`` s pass (``None``: forever)."""
        end = None if timeout is None else self.clock.now() + timeout
        while True:
            while self._backlog:
                rec = self._backlog.popleft()
                if include_dropped or "dropped" not in rec:
                    yield rec
            if end is None:
                wait = self.poll_interval_s
            else:
                wait = end - self.clock.now()
                if wait <= 0:
                    return
                wait = min(wait, self.poll_interval_s)
            self.poll(wait)

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float) -> dict | None:
        """The first decoded packet record (backlog first) for which ``predicate`` is true, or ``None``."""
        for rec in self.packets(timeout, include_dropped=False):
            if "link_event" in rec:
                continue
            if predicate(rec):
                return rec
        return None

    def clear_backlog(self) -> None:
        self._backlog.clear()

    # -- commanding -----------------------------------------------------------------------------------------
    def submit(self, name: str, system: str | None = None, confirm: str | None = None,
               timeout: float | None = None, args: Mapping[str, Any] | None = None) -> PusTc:
        """Validate, send and start tracking one telecommand; returns it without waiting.

        Raises (before anything is sent) ``KeyError``/``ArgumentError``/
        ``HazardousCommandError`` for a bad command, :class:`LinkUnavailable`
        if the link is not connected.
        """
        cmd = resolve_command(self.dictionary, name, system)
        tc = build_tc(self.dictionary, cmd.name, args, cmd.system, self.seq.peek(cmd.apid), self.source_id,
                      confirm=confirm)
        if not self.wait_connected():
            raise LinkUnavailable(f"link {self.link_spec} is not connected")
        try:
            if self.space is not None:
                self.space.send_tc(tc.pack(), self.clock.now())
                self._space_output()
            else:
                self.link.write(frame(tc.pack()))
        except OSError as exc:
            raise LinkUnavailable(f"cannot write to {self.link_spec}: {exc}") from None
        self.seq.advance(cmd.apid)
        self.stats["tc_sent"] += 1
        if self.archive is not None:
            self.archive.add_command(tc, self.clock.now(), command=cmd.name, system=cmd.system, args=dict(args or {}),
                                     session=None, link=self.link_spec,
                                     timeout_s=timeout if timeout is not None else self.default_timeout(cmd))
        self.tracker.add_tc(tc, self.clock.now(), timeout if timeout is not None else self.default_timeout(cmd),
                            cmd.name)
        return tc

    def wait(self, tc: PusTc, on_update: Callable[[VerificationUpdate], None] | None = None) -> VerificationResult:
        """Block until ``tc``'s verification completes, fails or times out; report each stage to ``on_update``."""
        seen = 0
        while True:
            st = self.tracker.status(tc)
            if st is None:
                raise KeyError(f"telecommand apid={tc.apid} seq={tc.seq_count} is not tracked")
            if on_update is not None:
                for r in st.reports[seen:]:
                    on_update(VerificationUpdate(st, r, st.timed_out))
            seen = len(st.reports)
            if st.done:
                if st.state == "TIMEOUT" and on_update is not None:
                    on_update(VerificationUpdate(st, None))
                return st
            remaining = st.deadline - self.clock.now()
            self.poll(min(max(remaining, 0.0), self.poll_interval_s))

    def send(self, name: str, system: str | None = None, confirm: str | None = None, timeout: float | None = None,
             *, args: Mapping[str, Any] | None = None, on_update: Callable[[VerificationUpdate], None] | None = None,
             **kwargs: Any) -> VerificationResult:
        """Send a command and block until completion, failure or timeout.

        Arguments go as keywords (``send("FSS_SET_MODE", mode="SCIENCE")``)
        or as ``args={...}`` for names that clash with this signature.
        """
        merged = {**(args or {}), **kwargs}
        tc = self.submit(name, system, confirm, timeout, merged)
        return self.wait(tc, on_update)
