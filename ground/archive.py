"""The ground archive: every packet, its decoded values, events and command history, in SQLite.

* :class:`ArchiveWriter` stores packets in batches: ``add()`` only queues,
  and a writer (a background thread by default) inserts each batch with
  ``executemany`` in one transaction and commits every ``commit_every``
  packets or every ``commit_interval`` seconds, whichever comes first.
  ``acknowledged`` is the number of packets *committed*: with the database in
  WAL mode, a committed transaction survives the process being killed
  (``kill -9``).  With ``synchronous=NORMAL`` (the default) an operating
  system crash or power loss may lose the last transactions; pass
  ``synchronous="FULL"`` to survive that too, at some cost in speed.
* :class:`Archive` opens an archive read-only and answers queries: a
  parameter over a time range, events by severity, command history with every
  verification stage, and packets for replay and export.

Tables: ``packets`` (raw bytes, reception time, link, direction, header
fields, decoded values as a JSON array, limit flags, error reason),
``layouts`` (the parameter names of each value array, stored once),
``events``, ``commands`` (when, what, from which session, with arguments) and
``stages`` (each PUS-1 verification report, matched to its command by APID
and sequence count), plus ``meta``.  Anything that cannot be opened or read
raises :class:`ArchiveError` with one readable sentence.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from itertools import chain as _chain
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from fsw.protocol import PusTc

from .archive_query import ParamLocation, command_state

__all__ = ["Archive", "ArchiveError", "ArchiveWriter", "Sample", "SCHEMA_VERSION", "is_sqlite_file"]

SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packets(
    id INTEGER PRIMARY KEY,
    rx_time REAL,              -- reception (or sending) time in mission seconds, NULL if unknown (captures)
    link TEXT,                 -- link or source the packet came from
    dir TEXT NOT NULL,         -- 'rx' received, 'tx' sent by the ground
    apid INTEGER, seq_count INTEGER, type TEXT, service INTEGER, subservice INTEGER,
    time REAL,                 -- the packet's own time stamp (TM), mission seconds
    name TEXT,                 -- dictionary packet or command name
    error TEXT, detail TEXT,   -- why the bytes did not decode (NULL when they did)
    params TEXT,               -- decoded values, a JSON array in the order of its layout (NULL when none)
    limits TEXT,               -- limit flags, a JSON object {parameter: "warn" or "alarm"} (NULL when none)
    raw BLOB NOT NULL,         -- the packet (or the damaged bytes) exactly as received
    layout INTEGER             -- the parameter names of params, in layouts
);
CREATE TABLE IF NOT EXISTS layouts(id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS packets_name_time ON packets(name, time);
CREATE TABLE IF NOT EXISTS events(
    packet_id INTEGER PRIMARY KEY, time REAL, apid INTEGER, system TEXT, event TEXT, event_id INTEGER,
    severity TEXT, params TEXT, limits TEXT);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS commands(
    id INTEGER PRIMARY KEY, sent_at REAL, session TEXT, link TEXT, command TEXT, system TEXT,
    apid INTEGER, seq_count INTEGER, ack_flags INTEGER, args TEXT, timeout_s REAL, packet_id INTEGER,
    timed_out INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS commands_key ON commands(apid, seq_count);
CREATE TABLE IF NOT EXISTS stages(
    id INTEGER PRIMARY KEY, command_id INTEGER, apid INTEGER, seq_count INTEGER, stage TEXT, success INTEGER,
    failure TEXT, step INTEGER, reporter TEXT, reporter_apid INTEGER, received REAL, tm_time REAL,
    packet_id INTEGER);
CREATE INDEX IF NOT EXISTS stages_command ON stages(command_id);
"""

_INSERT_PACKET = ("INSERT INTO packets(rx_time, link, dir, apid, seq_count, type, service, subservice, time, "
                  "name, error, detail, params, limits, raw, layout) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_INSERT_EVENT = ("INSERT INTO events(packet_id, time, apid, system, event, event_id, severity, params, limits) "
                 "VALUES (?,?,?,?,?,?,?,?,?)")
_INSERT_COMMAND = ("INSERT INTO commands(sent_at, session, link, command, system, apid, seq_count, ack_flags, args, "
                   "timeout_s, packet_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_INSERT_STAGE = ("INSERT INTO stages(command_id, apid, seq_count, stage, success, failure, step, reporter, "
                 "reporter_apid, received, tm_time, packet_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")

#: rows per multi-row INSERT, largest first; a batch is cut into these and the rest goes row by row
_INSERT_CHUNKS = (1024, 256, 64, 16)
_PACKET_COLUMNS = _INSERT_PACKET.count("?")
_ROW_MARKS = "(" + ",".join("?" * _PACKET_COLUMNS) + ")"
_INSERT_PACKETS_N = {n: _INSERT_PACKET.split(" VALUES ")[0] + " VALUES " + ",".join([_ROW_MARKS] * n)
                     for n in _INSERT_CHUNKS}


def _insert_chunks(con: sqlite3.Connection) -> tuple[int, ...]:
    """The sizes of :data:`_INSERT_CHUNKS` this SQLite takes (its limit on host parameters; 999 before 3.32)."""
    try:
        limit = con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):  # Python before 3.11
        limit = 999
    return tuple(n for n in _INSERT_CHUNKS if n * _PACKET_COLUMNS <= limit)


def _insert_packets(con: sqlite3.Connection, rows: list[tuple], chunks: tuple[int, ...] = _INSERT_CHUNKS) -> None:
    """Insert ``rows`` in order, mostly with multi-row INSERTs of :data:`_INSERT_CHUNKS` rows.

    ``executemany`` binds and steps one row at a time, giving up Python's GIL
    around every step; from a background writer, each row then waits for the
    producing thread to hand the GIL back (up to the 5 ms switch interval).
    A statement of 1,024 rows needs the GIL once, binds its parameters in C,
    and inserts them all with the GIL released.  The ids stay consecutive,
    in row order.
    """
    pos, n = 0, len(rows)
    for size in chunks:
        if n - pos >= size:
            sql = _INSERT_PACKETS_N[size]
            while n - pos >= size:
                con.execute(sql, list(_chain(*rows[pos:pos + size])))
                pos += size
    if pos < n:
        con.executemany(_INSERT_PACKET, rows[pos:])


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON with the C encoder built once (``JSONEncoder.encode`` rebuilds it on every call)."""
    import json.encoder as je

    slow = json.JSONEncoder(separators=(",", ":"), default=str).encode
    make = getattr(je, "c_make_encoder", None)
    if make is None:
        return slow
    fast = make(None, str, je.encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(obj: Any) -> str:
        return "".join(fast(obj, 0))
    return encode


_encode = _make_encoder()



class ArchiveError(Exception):
    """The archive cannot be created, opened or read; the message says which file and why."""


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` starts with the SQLite file header (an archive, or at least a database)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _check_file(path: Path, must_exist: bool) -> None:
    if not path.exists():
        if must_exist:
            raise ArchiveError(f"no archive at {path}")
        return
    if path.is_dir():
        raise ArchiveError(f"{path} is a directory, not an archive")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        if must_exist:
            raise ArchiveError(f"{path} is empty, not an archive")
        return
    if head != SQLITE_MAGIC:
        raise ArchiveError(f"{path} is not an archive (not an SQLite database, or its header is damaged)")


def _corrupt(path: Path, exc: Exception) -> ArchiveError:
    return ArchiveError(f"archive {path} is corrupt or unreadable: {exc}")


def _check_schema(con: sqlite3.Connection, path: Path) -> dict[str, str]:
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "packets", "layouts", "events", "commands", "stages"} <= tables:
            raise ArchiveError(f"{path} is an SQLite database but not a ground archive (its tables are missing)")
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as exc:
        raise _corrupt(path, exc) from None
    version = meta.get("schema_version")
    if version != str(SCHEMA_VERSION):
        raise ArchiveError(f"{path} has archive schema version {version!r}; this tool reads {SCHEMA_VERSION}")
    return meta


# -- writing -----------------------------------------------------------------------------------------------------

def _verification_extra(rec: dict) -> dict:
    req = rec["request"]
    return {"kind": "stage", "apid": req.get("apid"), "seq_count": req.get("seq_count"), "stage": rec.get("stage"),
            "success": bool(rec.get("success")), "failure": rec.get("failure"),
            "step": rec.get("params", {}).get("STEP") if rec.get("stage") == "progress" else None,
            "reporter": rec.get("system"), "reporter_apid": rec.get("apid"), "tm_time": rec.get("time")}


def _between(column: str, start: float | None, end: float | None, args: list[Any]) -> str:
    """SQL for ``start <= column <= end`` (either bound optional), its values appended to ``args``."""
    sql = ""
    if start is not None:
        sql += f" AND {column} >= ?"
        args.append(start)
    if end is not None:
        sql += f" AND {column} <= ?"
        args.append(end)
    return sql


class ArchiveWriter:
    """Batched, durable storing of packets and command history into one archive file.

    ``add()`` and the other ``add_*`` methods queue; nothing is durable until
    :attr:`acknowledged` counts it.  ``on_commit(acknowledged)`` is called
    after every commit (from the writer thread when ``threaded``).

    ``session`` names the source recorded with commands found in the stream
    (a ground session name, or ``ingest:FILE``).
    """

    def __init__(self, path: str | Path, *, mission: str = "", session: str = "ground",
                 commit_every: int = 5000, commit_interval: float = 0.5, synchronous: str = "NORMAL",
                 threaded: bool = True, on_commit: Callable[[int], None] | None = None,
                 max_pending: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if commit_every < 1:
            raise ValueError("commit_every must be at least 1")
        if not commit_interval > 0:
            raise ValueError("commit_interval must be positive")
        sync = synchronous.upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self.session = session
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self.max_pending = max_pending or 4 * commit_every
        self.on_commit = on_commit
        self._clock = clock
        self._rows: list[tuple] = []                      # packet rows, in arrival order
        self._extras: list[tuple[int, dict]] = []         # (index of its packet row, side effect)
        self._lock = threading.Condition()
        self._submitted = 0        # packets queued so far
        self._acknowledged = 0     # packets committed so far
        self._commits = 0
        self._error: BaseException | None = None
        self._closing = False
        self._flush_wanted = False
        self._deadline = clock() + commit_interval
        self._cmd_ids: dict[tuple[int, int], int] = {}
        self.con = self._open(sync, mission)
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=f"archive-writer:{self.path.name}", daemon=True)
            self._thread.start()

    # -- setup ------------------------------------------------------------------------------------------------
    def _open(self, sync: str, mission: str) -> sqlite3.Connection:
        _check_file(self.path, must_exist=False)
        try:
            con = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                  cached_statements=64)
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot open archive {self.path}: {exc}") from None
        try:
            con.execute("PRAGMA busy_timeout=10000")
            con.execute("PRAGMA cache_size=-32768")  # 32 MiB: the tails of the indexes stay in memory
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ArchiveError(f"archive {self.path} cannot use WAL mode (journal mode stays {mode})")
            con.execute(f"PRAGMA synchronous={sync}")
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "meta" not in tables:
                raise ArchiveError(f"{self.path} is an SQLite database but not a ground archive; "
                                   "choose another file")
            if not tables:
                # schema and meta in one transaction: a kill between them cannot leave a half-made archive
                con.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            con.execute(stmt)
                    con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                    [("schema_version", str(SCHEMA_VERSION)), ("mission", mission),
                                     ("created_unix", repr(time.time()))])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
            _check_schema(con, self.path)
            self._layouts: dict[tuple[str, ...], int] = {
                tuple(json.loads(names)): lid for lid, names in con.execute("SELECT id, names FROM layouts")}
            self._next_layout = max(self._layouts.values(), default=0) + 1
            self._chunks = _insert_chunks(con)
        except sqlite3.DatabaseError as exc:
            con.close()
            raise _corrupt(self.path, exc) from None
        except ArchiveError:
            con.close()
            raise
        return con

    # -- queueing ---------------------------------------------------------------------------------------------
    def add(self, raw: bytes | bytearray | memoryview, record: dict, rx_time: float | None = None,
            link: str | None = None, direction: str = "rx") -> None:
        """Queue one packet (or damaged stretch of bytes) with its decoded record."""
        rec = record
        if "dropped" in rec:  # bytes a deframer discarded: kept, marked
            row = (rx_time, link, direction, None, None, None, None, None, None, None,
                   rec.get("error") or f"dropped:{rec['dropped']}", rec.get("detail"), None, None, bytes(raw), None)
            self._queue(row, None)
            return
        params = rec["params"]
        limits = rec["limits"]
        extra = None
        if "event_id" in rec:
            extra = {"kind": "event", "system": rec["system"], "event": rec.get("event"),
                     "event_id": rec["event_id"], "severity": rec.get("severity"),
                     "params": _encode(params) if params else None}
        elif "request" in rec:
            if isinstance(rec["request"], dict) and "error" not in rec:
                extra = _verification_extra(rec)
        elif rec["packet_type"] == "TC" and "error" not in rec and direction == "rx":
            extra = {"kind": "command", "command": rec["name"], "system": rec["system"],
                     "ack_flags": rec.get("ack_flags"), "session": self.session, "timeout_s": None,
                     "args": _encode(params) if params else None}
        if params:
            keys = tuple(params)
            layout = self._layouts.get(keys)
            if layout is None:
                layout = self._new_layout(keys)
            values = _encode(list(params.values()))
        else:
            layout = values = None
        row = (rx_time if rx_time is not None else rec.get("rx_time"), link if link is not None else rec.get("link"),
               direction, rec["apid"], rec["seq_count"], rec["packet_type"], rec["service"], rec["subservice"],
               rec["time"], rec["name"], rec.get("error"), rec.get("detail"), values,
               _encode(limits) if limits else None, raw if type(raw) is bytes else bytes(raw), layout)
        if extra is None and self._thread is None and self._error is None and not self._closing:
            rows = self._rows  # the hot path of an inline writer: one append, a commit now and then
            rows.append(row)
            self._submitted += 1
            n = len(rows)
            # the clock is read for every packet of a small batch (slow links), every 64th of a big one
            if n >= self.commit_every or ((n < 64 or n & 63 == 0) and self._clock() >= self._deadline):
                self._write_pending()
            return
        self._queue(row, extra)

    def add_command(self, tc: PusTc | bytes, sent_at: float, *, command: str | None = None, system: str | None = None,
                    args: dict | None = None, session: str | None = None, link: str | None = None,
                    timeout_s: float | None = None, record: dict | None = None) -> None:
        """Queue a telecommand the ground sent: its bytes (direction ``tx``) and a command-history row."""
        if isinstance(tc, PusTc):
            raw = tc.pack()
            apid, seq, svc, sub, ack = tc.apid, tc.seq_count, tc.service, tc.subservice, tc.ack_flags
        else:
            raw = bytes(tc)
            rec0 = record or {}
            apid, seq = rec0.get("apid"), rec0.get("seq_count")
            svc, sub, ack = rec0.get("service"), rec0.get("subservice"), rec0.get("ack_flags")
        rec = record or {}
        params = args if args is not None else rec.get("params")
        extra = {"kind": "command", "command": command or rec.get("name"), "system": system or rec.get("system"),
                 "ack_flags": ack, "session": session or self.session, "timeout_s": timeout_s,
                 "args": _encode(params) if params else None}
        layout = values = None
        if params:
            keys = tuple(params)
            layout = self._layouts.get(keys)
            if layout is None:
                layout = self._new_layout(keys)
            values = _encode(list(params.values()))
        row = (sent_at, link, "tx", apid, seq, "TC", svc, sub, None, extra["command"], rec.get("error"),
               rec.get("detail"), values, None, raw, layout)
        self._queue(row, extra)

    def _new_layout(self, keys: tuple[str, ...]) -> int:
        """Id of a new parameter layout, stored with the next batch (before any packet that uses it)."""
        lock = self._lock if self._thread is not None else None
        if lock is not None:
            lock.acquire()
        try:
            layout = self._layouts.get(keys)
            if layout is None:
                layout = self._next_layout
                self._next_layout += 1
                self._layouts[keys] = layout
                self._extras.append((len(self._rows) - 1, {"kind": "layout", "id": layout,
                                                            "names": _encode(list(keys))}))
            return layout
        finally:
            if lock is not None:
                lock.release()

    def add_timeout(self, apid: int, seq_count: int, at: float) -> None:
        """Record that the session gave up waiting for the command (apid, seq_count) at ``at``."""
        self._queue(None, {"kind": "timeout", "apid": apid, "seq_count": seq_count, "at": at})

    def _queue(self, row: tuple | None, extra: dict | None) -> None:
        """Queue a packet row and/or a side effect (event, command, stage, timeout) that follows it."""
        if self._error is not None:
            raise ArchiveError(f"archive {self.path}: writing failed: {self._error}")
        if self._closing:
            raise ArchiveError(f"archive {self.path} is closed")
        if self._thread is None:
            self._put(row, extra)
            if len(self._rows) >= self.commit_every or self._clock() >= self._deadline:
                self._write_pending()
            return
        with self._lock:
            while len(self._rows) >= self.max_pending and self._error is None:
                self._lock.notify_all()
                self._lock.wait(0.5)  # backpressure: the writer is behind
            self._put(row, extra)
            if len(self._rows) >= self.commit_every:
                self._lock.notify_all()

    def _put(self, row: tuple | None, extra: dict | None) -> None:
        rows = self._rows
        if row is not None:
            rows.append(row)
            self._submitted += 1
            if extra is not None:
                self._extras.append((len(rows) - 1, extra))
        elif extra is not None:
            self._extras.append((len(rows) - 1, extra))  # after the last queued packet

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def acknowledged(self) -> int:
        """Packets committed to the archive (durable)."""
        return self._acknowledged

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def commits(self) -> int:
        return self._commits

    @property
    def error(self) -> BaseException | None:
        return self._error

    def tick(self) -> None:
        """Inline mode: commit if the commit interval has passed (call from an idle loop)."""
        if self._thread is None and (self._rows or self._extras) and self._clock() >= self._deadline:
            self._write_pending()

    def flush(self, timeout: float | None = 30.0) -> int:
        """Commit everything queued so far; returns :attr:`acknowledged`.  Raises :class:`ArchiveError`."""
        if self._thread is None:
            if self._rows or self._extras:
                self._write_pending()
            return self._acknowledged
        target = self._submitted
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_wanted = True
            self._lock.notify_all()
            while self._acknowledged < target and self._error is None:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ArchiveError(f"archive {self.path}: flush timed out with "
                                       f"{target - self._acknowledged} packets not yet committed")
                self._lock.wait(remaining if remaining is not None else 0.5)
        if self._error is not None:
            raise ArchiveError(f"archive {self.path}: writing failed: {self._error}")
        return self._acknowledged

    def close(self) -> int:
        """Commit what is queued, stop the writer and close the file; returns :attr:`acknowledged`."""
        if self._closing:
            return self._acknowledged
        try:
            if self._error is None:
                self.flush(timeout=None)
        finally:
            with self._lock:
                self._closing = True
                self._lock.notify_all()
            if self._thread is not None:
                self._thread.join()
            try:
                self.con.close()
            except sqlite3.Error:
                pass
        return self._acknowledged

    def __enter__(self) -> "ArchiveWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the writer ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closing:
                    pending = self._rows or self._extras
                    due = self._deadline - self._clock()
                    if pending and (len(self._rows) >= self.commit_every or self._flush_wanted or due <= 0):
                        break
                    if not pending:
                        self._deadline = self._clock() + self.commit_interval
                        due = self.commit_interval
                    self._lock.wait(max(due, 0.001))
                if self._closing and not (self._rows or self._extras):
                    return
                rows, extras = self._take()
                self._flush_wanted = False
                self._lock.notify_all()  # wake a producer held back by max_pending
            try:
                n = self._write(rows, extras)
            except BaseException as exc:  # noqa: BLE001 - reported to the producer through add()/flush()
                with self._lock:
                    self._error = exc
                    self._lock.notify_all()
                return
            with self._lock:
                self._acknowledged += n
                self._commits += 1
                self._deadline = self._clock() + self.commit_interval
                self._lock.notify_all()
            if self.on_commit is not None:
                self.on_commit(self._acknowledged)

    def _take(self) -> tuple[list[tuple], list[tuple[int, dict]]]:
        rows, extras = self._rows, self._extras
        self._rows, self._extras = [], []
        return rows, extras

    def _write_pending(self) -> None:
        rows, extras = self._take()
        try:
            n = self._write(rows, extras)
        except sqlite3.DatabaseError as exc:
            self._error = exc
            raise _corrupt(self.path, exc) from None
        self._acknowledged += n
        self._commits += 1
        self._deadline = self._clock() + self.commit_interval
        if self.on_commit is not None:
            self.on_commit(self._acknowledged)

    def _write(self, rows: list[tuple], extras: list[tuple[int, dict]]) -> int:
        """Insert one batch in one transaction and commit it; returns the number of packets written.

        ``BEGIN IMMEDIATE`` takes the write lock first, so the ids SQLite gives
        the rows (max + 1, one by one) are known: the first is ``base``.
        """
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            base = con.execute("SELECT coalesce(max(id), 0) FROM packets").fetchone()[0] + 1
            _insert_packets(con, rows, self._chunks)
            for idx, extra in extras:
                pid = base + idx if idx >= 0 else None
                row = rows[idx] if idx >= 0 else None
                kind = extra["kind"]
                if kind == "event":
                    assert row is not None
                    con.execute(_INSERT_EVENT, (pid, row[8], row[3], extra["system"], extra["event"],
                                                extra["event_id"], extra["severity"], extra["params"], row[13]))
                elif kind == "command":
                    assert row is not None
                    cur = con.execute(_INSERT_COMMAND, (row[0], extra["session"], row[1], extra["command"],
                                                        extra["system"], row[3], row[4], extra["ack_flags"],
                                                        extra["args"], extra["timeout_s"], pid))
                    self._cmd_ids[(row[3], row[4])] = cur.lastrowid
                elif kind == "stage":
                    assert row is not None
                    cid = self._command_id(extra["apid"], extra["seq_count"])
                    con.execute(_INSERT_STAGE, (cid, extra["apid"], extra["seq_count"], extra["stage"],
                                                int(extra["success"]), extra["failure"], extra["step"],
                                                extra["reporter"], extra["reporter_apid"], row[0], extra["tm_time"],
                                                pid))
                elif kind == "timeout":
                    self._timeout(extra)
                elif kind == "layout":
                    self._store_layout(extra)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._cmd_ids.clear()  # ids assigned in the rolled-back batch are void
            raise
        return len(rows)

    def _command_id(self, apid: Any, seq: Any) -> int | None:
        cid = self._cmd_ids.get((apid, seq))
        if cid is None:
            row = self.con.execute("SELECT id FROM commands WHERE apid=? AND seq_count=? ORDER BY id DESC LIMIT 1",
                                   (apid, seq)).fetchone()
            if row is not None:
                cid = self._cmd_ids[(apid, seq)] = row[0]
        return cid

    def _store_layout(self, extra: dict) -> None:
        row = self.con.execute("SELECT names FROM layouts WHERE id=?", (extra["id"],)).fetchone()
        if row is None:
            self.con.execute("INSERT INTO layouts(id, names) VALUES (?, ?)", (extra["id"], extra["names"]))
        elif row[0] != extra["names"]:
            raise ArchiveError(f"archive {self.path}: layout {extra['id']} was written by another process; "
                               "write an archive from one process at a time")

    def _timeout(self, extra: dict) -> None:
        apid, seq, at = extra["apid"], extra["seq_count"], extra["at"]
        cid = self._command_id(apid, seq)
        if cid is not None:
            self.con.execute("UPDATE commands SET timed_out=1 WHERE id=?", (cid,))
        self.con.execute(_INSERT_STAGE, (cid, apid, seq, "timeout", 0, "TIMEOUT", None, None, None, at, None, None))


# -- reading ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a parameter."""

    time: float | None
    value: Any
    limit: str | None       # "warn", "alarm" or None
    source: str             # packet or event name
    apid: int | None
    packet_id: int


class Archive:
    """A read-only view of an archive file.  Every failure is an :class:`ArchiveError`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_file(self.path, must_exist=True)
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self.con = sqlite3.connect(uri, uri=True, isolation_level=None)
            self.con.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise ArchiveError(f"cannot open archive {self.path}: {exc}") from None
        try:
            self.meta = _check_schema(self.con, self.path)
        except ArchiveError:
            self.con.close()
            raise

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        try:
            return self.con.execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    def _iter(self, sql: str, args: Iterable[Any] = (), batch: int = 2000) -> Iterator[tuple]:
        try:
            cur = self.con.execute(sql, tuple(args))
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    return
                yield from rows
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from None

    # -- summary ------------------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        (n, errors, t0, t1) = self._query("SELECT count(*), count(error), min(time), max(time) FROM packets")[0]
        sent = self._query("SELECT count(*) FROM packets WHERE dir='tx'")[0][0]
        events = self._query("SELECT count(*) FROM events")[0][0]
        commands = self._query("SELECT count(*) FROM commands")[0][0]
        return {"packets": n, "errors": errors, "sent": sent, "events": events, "commands": commands,
                "first_time": t0, "last_time": t1, "mission": self.meta.get("mission", ""),
                "schema_version": int(self.meta.get("schema_version", 0))}

    def integrity(self) -> list[str]:
        """``PRAGMA integrity_check``: ``["ok"]`` for a sound file, else the problems found."""
        return [r[0] for r in self._query("PRAGMA integrity_check")]

    # -- parameters ---------------------------------------------------------------------------------------------
    def param_series(self, loc: ParamLocation, start: float | None = None, end: float | None = None,
                     limit: int | None = None) -> list[Sample]:
        """Values of one parameter between ``start`` and ``end`` (mission seconds, inclusive), by time."""
        path = f'$."{loc.name}"'
        lo = -1e300 if start is None else start
        hi = 1e300 if end is None else end
        out: list[Sample] = []
        if loc.packets:
            marks = ",".join("?" * len(loc.packets))
            for layout, index in self._layouts_with(loc.name):
                rows = self._query(
                    f"SELECT time, json_extract(params, '$[{index}]'), json_extract(limits, ?), name, apid, id "
                    f"FROM packets WHERE name IN ({marks}) AND time BETWEEN ? AND ? AND layout = ? "
                    f"AND error IS NULL AND dir='rx' ORDER BY time, id", (path, *loc.packets, lo, hi, layout))
                out.extend(Sample(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)
        if loc.events:
            marks = ",".join("?" * len(loc.events))
            rows = self._query(
                f"SELECT time, json_extract(params, ?), json_extract(limits, ?), event, apid, packet_id FROM events "
                f"WHERE event IN ({marks}) AND time BETWEEN ? AND ? AND json_type(params, ?) IS NOT NULL "
                f"ORDER BY time, packet_id", (path, path, *loc.events, lo, hi, path))
            out.extend(Sample(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows)
        out.sort(key=lambda s: (s.time, s.packet_id))
        p = loc.parameter
        fix: Callable[[Any], Any] | None = None
        if p.count > 1:
            fix = json.loads
        elif p.type == "bool":
            fix = bool
        if fix is not None:
            out = [Sample(s.time, fix(s.value) if s.value is not None else None, s.limit, s.source, s.apid,
                          s.packet_id) for s in out]
        return out[:limit] if limit is not None else out

    def _layouts_with(self, name: str) -> list[tuple[int, int]]:
        """(layout id, position) of every stored layout that holds parameter ``name``."""
        out = []
        for lid, names in self._query("SELECT id, names FROM layouts ORDER BY id"):
            try:
                keys = json.loads(names)
            except ValueError as exc:
                raise _corrupt(self.path, exc) from None
            if name in keys:
                out.append((lid, keys.index(name)))
        return out

    # -- events -------------------------------------------------------------------------------------------------
    def events(self, severities: Iterable[str] | None = None, start: float | None = None, end: float | None = None,
               system: str | None = None) -> list[dict]:
        sql = "SELECT packet_id, time, apid, system, event, event_id, severity, params FROM events WHERE 1=1"
        args: list[Any] = []
        if severities:
            sev = list(severities)
            sql += f" AND severity IN ({','.join('?' * len(sev))})"
            args += sev
        sql += _between("time", start, end, args)
        if system is not None:
            sql += " AND system = ?"
            args.append(system.upper())
        sql += " ORDER BY time, packet_id"
        return [{"packet_id": r[0], "time": r[1], "apid": r[2], "system": r[3], "event": r[4], "event_id": r[5],
                 "severity": r[6], "params": json.loads(r[7]) if r[7] else {}} for r in self._query(sql, args)]

    # -- commands -----------------------------------------------------------------------------------------------
    def commands(self, start: float | None = None, end: float | None = None, command: str | None = None,
                 session: str | None = None) -> list[dict]:
        """Command history with every verification stage and the resulting state, oldest first."""
        sql = ("SELECT id, sent_at, session, link, command, system, apid, seq_count, ack_flags, args, timeout_s, "
               "timed_out FROM commands WHERE 1=1")
        args: list[Any] = []
        sql += _between("sent_at", start, end, args)
        if command is not None:
            sql += " AND command = ?"
            args.append(command.upper())
        if session is not None:
            sql += " AND session = ?"
            args.append(session)
        sql += " ORDER BY id"
        cmds = self._query(sql, args)
        stages: dict[int, list[dict]] = {}
        if cmds:
            lo, hi = cmds[0][0], cmds[-1][0]
            for r in self._query("SELECT command_id, stage, success, failure, step, reporter, reporter_apid, "
                                 "received, tm_time FROM stages WHERE command_id BETWEEN ? AND ? ORDER BY id",
                                 (lo, hi)):
                stages.setdefault(r[0], []).append(
                    {"stage": r[1], "success": bool(r[2]), "failure": r[3], "step": r[4], "reporter": r[5],
                     "reporter_apid": r[6], "received": r[7], "tm_time": r[8]})
        out = []
        for r in cmds:
            st = stages.get(r[0], [])
            out.append({"id": r[0], "sent_at": r[1], "session": r[2], "link": r[3], "command": r[4], "system": r[5],
                        "apid": r[6], "seq_count": r[7], "ack_flags": r[8], "args": json.loads(r[9]) if r[9] else {},
                        "timeout_s": r[10], "state": command_state(r[8], st, bool(r[11])), "stages": st})
        return out

    def unmatched_stages(self) -> int:
        """Verification reports in the archive that match no recorded command."""
        return self._query("SELECT count(*) FROM stages WHERE command_id IS NULL")[0][0]

    # -- packets ------------------------------------------------------------------------------------------------
    def packets(self, apids: Iterable[int] | None = None, start: float | None = None, end: float | None = None,
                directions: tuple[str, ...] = ("rx",), valid_only: bool = True) -> Iterator[tuple]:
        """``(id, rx_time, link, dir, time, error, raw)`` in archive order (the order they were stored)."""
        sql = "SELECT id, rx_time, link, dir, time, error, raw FROM packets WHERE 1=1"
        args: list[Any] = []
        if directions:
            sql += f" AND dir IN ({','.join('?' * len(directions))})"
            args += list(directions)
        if valid_only:
            sql += " AND error IS NULL"
        if apids is not None:
            ap = list(apids)
            sql += f" AND apid IN ({','.join('?' * len(ap))})"
            args += ap
        sql += _between("time", start, end, args)
        sql += " ORDER BY id"
        return self._iter(sql, args)
