"""The SQLite archive: storing, batching and acknowledging, queries, command history, bad files."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from fsw.dictionary import load_dictionary
from fsw.protocol import PusTc, PusTm
from ground.archive import Archive, ArchiveError, ArchiveWriter
from ground.archive_query import command_state, csv_safe, locate_parameter, parse_time, severities_at_least
from ground.decoding import PacketDecoder
from ground.replay import ingest_capture
from tests.unit.archive_data import T0, build_stream, framed

D = load_dictionary()


@pytest.fixture(scope="module")
def stream():
    return build_stream(D)


@pytest.fixture()
def db(tmp_path: Path, stream) -> Path:
    path = tmp_path / "a.db"
    with ArchiveWriter(path, mission=D.mission, session="test", threaded=False) as w:
        ingest_capture(w, b"".join(stream.packets), PacketDecoder(D), "file:test")
    return path


# -- storing ------------------------------------------------------------------------------------------------

def test_every_packet_is_stored_byte_exact_with_its_link(db: Path, stream) -> None:
    with Archive(db) as a:
        rows = list(a.packets(valid_only=False))
        assert [bytes(r[6]) for r in rows] == stream.packets
        assert {r[2] for r in rows} == {"file:test"}
        assert all(r[1] is None for r in rows)  # a capture file has no reception times
        s = a.summary()
        assert s["packets"] == len(stream.packets) and s["errors"] == 0 and s["mission"] == D.mission
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_parameter_over_a_time_range_with_limit_flags(db: Path, stream) -> None:
    loc = locate_parameter(D, "FSS_TEMP_VBB")
    with Archive(db) as a:
        everything = a.param_series(loc)
        assert [(s.time, round(s.value, 6)) for s in everything] == [(t, round(v, 6)) for t, v in stream.temps]
        window = a.param_series(loc, T0 + 30, T0 + 40)
    assert [s.time for s in window] == [T0 + i for i in range(30, 41)]
    lim = D.packet("FSS_HK").param("FSS_TEMP_VBB").limits
    for s in everything:
        expected = lim.check(s.value)
        assert (s.limit or "ok") == expected, (s.time, s.value)
    assert {s.limit for s in everything} == {None, "warn", "alarm"}
    assert all(s.source == "FSS_HK" for s in everything)


def test_event_arguments_are_parameters_too(db: Path, stream) -> None:
    loc = locate_parameter(D, "FSS_BATT_SOC_EVT")
    assert loc.events == ("FSS_BATT_LOW",) and loc.packets == ()
    with Archive(db) as a:
        values = a.param_series(loc)
    assert [s.time for s in values] == [t for t, e, _ in stream.events if e == "FSS_BATT_LOW"]
    assert [s.value for s in values] == [max(0, 40 - i) for i in (10, 30, 50)]  # u8 saturates at 0


def test_events_by_severity(db: Path, stream) -> None:
    with Archive(db) as a:
        medium = a.events(["MEDIUM"])
        info = a.events(["INFO"])
        everything = a.events()
        later = a.events(None, start=T0 + 20)
    assert [(e["time"], e["event"]) for e in medium] == [(t, n) for t, n, s in stream.events if s == "MEDIUM"]
    assert [e["event"] for e in info] == ["BOOT"] and info[0]["params"] == {"BOOT_RESTARTS": 2}
    assert len(everything) == len(stream.events)
    assert all(e["time"] >= T0 + 20 for e in later) and len(later) < len(everything)
    assert severities_at_least("medium") == ("MEDIUM", "HIGH")
    with pytest.raises(ValueError, match="severity"):
        severities_at_least("CRITICAL")


def test_command_history_from_a_capture_with_every_stage(db: Path) -> None:
    with Archive(db) as a:
        cmds = a.commands()
    assert [c["command"] for c in cmds] == ["FSS_SET_MODE", "FSS_LEVEL"]
    ok, bad = cmds
    assert ok["state"] == "SUCCESS" and ok["args"] == {"mode": "SCIENCE"} and ok["session"] == "test"
    assert [s["stage"] for s in ok["stages"]] == ["acceptance", "start", "completion"]
    assert bad["state"] == "FAILED"
    assert bad["stages"][-1] == {**bad["stages"][-1], "stage": "start", "success": False, "failure": "WRONG_MODE",
                                 "reporter": "FSS"}


def test_commands_sent_by_a_session_with_timeout_and_unmatched_reports(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    dec = PacketDecoder(D)
    cmd = D.command("LMS_DEPLOY")
    tc1 = PusTc(cmd.apid, 8, 1, D.encode_command(cmd, {"item": "MAST"}), seq_count=7)
    tc2 = PusTc(cmd.apid, 8, 1, D.encode_command(cmd, {"item": "ELECTRODE_1"}), seq_count=8)
    with ArchiveWriter(path, session="ops-1", threaded=True, commit_every=3) as w:
        w.add_command(tc1, 50.0, command="LMS_DEPLOY", system="LMS", args={"item": "MAST"}, link="pty", timeout_s=30)
        w.add_command(tc2, 51.0, command="LMS_DEPLOY", system="LMS", args={"item": "ELECTRODE_1"}, link="pty",
                      timeout_s=30)
        acc = PusTm(cmd.apid, 1, 1, D.encode_tm(D.packet("ACCEPT_OK"), {"TC_PACKET_ID": 0x1800 | cmd.apid,
                                                                         "TC_SEQ_CTRL": 0xC000 | 7}), time=50.5).pack()
        w.add(acc, dec.decode(acc), rx_time=50.6, link="pty")
        w.add_timeout(cmd.apid, 7, 80.0)
        stray = PusTm(cmd.apid, 1, 1, D.encode_tm(D.packet("ACCEPT_OK"), {"TC_PACKET_ID": 0x1800 | cmd.apid,
                                                                           "TC_SEQ_CTRL": 0xC000 | 99})).pack()
        w.add(stray, dec.decode(stray), rx_time=81.0, link="pty")
        assert w.flush() == 4  # 2 sent TCs and 2 received reports
    with Archive(path) as a:
        c1, c2 = a.commands(session="ops-1")
        assert c1["state"] == "TIMEOUT" and c1["timeout_s"] == 30 and c1["link"] == "pty"
        assert [s["stage"] for s in c1["stages"]] == ["acceptance", "timeout"]
        assert c1["stages"][0]["received"] == 50.6
        assert c2["state"] == "SENT" and c2["stages"] == []
        assert a.unmatched_stages() == 1
        assert a.commands(start=50.5) == [c2]
        sent = list(a.packets(directions=("tx",)))
        assert [bytes(r[6]) for r in sent] == [tc1.pack(), tc2.pack()]


def test_command_state_rules() -> None:
    ok = {"stage": "acceptance", "success": True}
    done = {"stage": "completion", "success": True}
    assert command_state(0b1111, [ok, done]) == "SUCCESS"
    assert command_state(0b0001, [ok]) == "SUCCESS"                 # only acceptance requested
    assert command_state(0b1111, [ok]) == "PENDING"
    assert command_state(0b1111, [ok], timed_out=True) == "TIMEOUT"
    assert command_state(0b1111, [ok, {"stage": "start", "success": False}]) == "FAILED"
    assert command_state(0b1111, []) == "SENT"


# -- batching and acknowledgement -----------------------------------------------------------------------------

def _hk(i: int) -> tuple[bytes, dict]:
    raw = PusTm(D.lander.apid, 3, 25, D.encode_tm(D.packet("LANDER_HK"), {"UPTIME": i}), seq_count=i & 0x3FFF,
                time=T0 + i).pack()
    return raw, PacketDecoder(D).decode(raw)


def _count(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT count(*) FROM packets").fetchone()[0]
    finally:
        con.close()


def test_nothing_is_acknowledged_before_it_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    now = [0.0]
    acks: list[int] = []
    w = ArchiveWriter(path, threaded=False, commit_every=10, commit_interval=5.0, clock=lambda: now[0],
                      on_commit=acks.append)
    for i in range(9):
        w.add(*_hk(i))
    assert w.acknowledged == 0 and w.submitted == 9 and _count(path) == 0  # queued, not stored
    w.add(*_hk(9))
    assert w.acknowledged == 10 and acks == [10] and _count(path) == 10  # the 10th commits the batch
    w.add(*_hk(10))
    w.tick()
    assert w.acknowledged == 10  # the interval has not passed
    now[0] = 5.0
    w.tick()
    assert w.acknowledged == 11 and acks == [10, 11] and _count(path) == 11
    assert w.close() == 11


def test_threaded_writer_commits_on_size_and_on_time(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    acks: list[int] = []
    w = ArchiveWriter(path, threaded=True, commit_every=50, commit_interval=0.05, on_commit=acks.append)
    for i in range(120):
        w.add(*_hk(i))
    assert w.flush() == 120
    assert acks and acks[-1] == 120 and all(a <= b for a, b in zip(acks, acks[1:]))
    w.add(*_hk(120))  # below commit_every: the interval commits it without a flush
    import time
    end = time.monotonic() + 5
    while w.acknowledged < 121 and time.monotonic() < end:
        time.sleep(0.01)
    assert w.acknowledged == 121
    w.close()
    assert _count(path) == 121


def test_big_batches_keep_the_order_and_the_links_between_tables(tmp_path: Path) -> None:
    # one batch of more than 1024 + 256 + 64 + 16 packets plus a remainder: every multi-row INSERT size is used
    s = build_stream(D, n_hk=1400)
    assert len(s.packets) > 1024 + 256 + 64 + 16
    path = tmp_path / "big.db"
    with ArchiveWriter(path, threaded=False, commit_every=10_000, commit_interval=1e9) as w:
        ingest_capture(w, b"".join(s.packets), PacketDecoder(D), "file:big")
    assert w.commits == 1  # all in one batch, at close
    con = sqlite3.connect(path)
    try:
        rows = con.execute("SELECT id, raw, apid, service FROM packets ORDER BY id").fetchall()
        assert [bytes(r[1]) for r in rows] == s.packets
        assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
        by_id = {r[0]: (r[2], r[3]) for r in rows}
        events = con.execute("SELECT packet_id, apid FROM events").fetchall()
        stages = con.execute("SELECT packet_id, reporter_apid FROM stages").fetchall()
        assert events and stages
        assert all(by_id[pid] == (apid, 5) for pid, apid in events)   # each event row names its own packet
        assert all(by_id[pid] == (apid, 1) for pid, apid in stages)   # and each verification report
    finally:
        con.close()


def test_multi_row_inserts_fit_the_sqlite_parameter_limit() -> None:
    from ground.archive import _insert_chunks

    con = sqlite3.connect(":memory:")
    try:
        con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # the limit of SQLite before 3.32
        assert _insert_chunks(con) == (16,)  # 16 rows x 16 columns = 256 parameters
        con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
        assert _insert_chunks(con) == (1024, 256, 64, 16)
    finally:
        con.close()


def test_reopening_appends(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    for round_ in range(2):
        with ArchiveWriter(path, threaded=False) as w:
            for i in range(5):
                w.add(*_hk(round_ * 5 + i))
    with Archive(path) as a:
        ups = [s.value for s in a.param_series(locate_parameter(D, "UPTIME"))]
    assert ups == list(range(10))


# -- damaged input ------------------------------------------------------------------------------------------

def test_damaged_capture_keeps_every_byte_and_every_good_packet(tmp_path: Path, stream) -> None:
    rng = random.Random(3)
    good = stream.packets
    blob = bytearray()
    for p in good:
        blob += p
        if rng.random() < 0.1:
            blob += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    unknown = PusTm(0x055, 3, 25, b"\x00\x01abc").pack()  # a well-formed packet no unit owns
    blob += unknown
    blob += good[0][:-5]  # truncated tail
    path = tmp_path / "e.db"
    with ArchiveWriter(path, threaded=False) as w:
        counts = ingest_capture(w, bytes(blob), PacketDecoder(D), "file:x")
    with Archive(path) as a:
        rows = list(a.packets(valid_only=False))
        assert sum(len(r[6]) for r in rows) == len(blob)  # nothing lost, nothing counted twice
        valid = [bytes(r[6]) for r in rows if r[5] is None]
        assert valid == good
        errors = {r[5] for r in rows if r[5] is not None}
        assert "unknown_apid" in errors and "truncated" in errors
    assert counts["packets"] == len(good) and counts["errors"] >= 3


def test_framed_capture_with_noise(tmp_path: Path, stream) -> None:
    blob = b"\x00garbage" + framed(stream.packets[:10]) + b"\x1a\xcf\xfc\x1d\x08"  # noise, frames, cut frame
    path = tmp_path / "f.db"
    with ArchiveWriter(path, threaded=False) as w:
        ingest_capture(w, blob, PacketDecoder(D), "file:f")
    with Archive(path) as a:
        rows = list(a.packets(valid_only=False))
    assert [bytes(r[6]) for r in rows if r[5] is None] == stream.packets[:10]
    assert sum(len(r[6]) for r in rows) + 4 * 10 == len(blob)
    assert {r[5] for r in rows if r[5]} == {"dropped:no_sync", "truncated"}


@pytest.mark.parametrize("content, message", [
    (b"this is not a database at all, just text" * 10, "not an archive"),
    (b"", "empty"),
])
def test_bad_files_give_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    with pytest.raises(ArchiveError, match=message):
        Archive(path)


def test_missing_and_foreign_databases(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="no archive at"):
        Archive(tmp_path / "nope.db")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    with pytest.raises(ArchiveError, match="not a ground archive"):
        Archive(other)
    with pytest.raises(ArchiveError, match="not a ground archive"):
        ArchiveWriter(other)


def test_corrupt_pages_give_a_clear_error(tmp_path: Path, db: Path) -> None:
    data = bytearray(db.read_bytes())
    assert len(data) > 8192
    for i in range(4096, len(data), 997):  # scribble over every page after the first
        data[i:i + 64] = b"\xde\xad" * 32
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="corrupt|malformed|not a ground archive"):
        with Archive(bad) as a:
            a.param_series(locate_parameter(D, "FSS_TEMP_VBB"))
            list(a.packets(valid_only=False))
            assert a.integrity() == ["ok"]


def test_unknown_parameter_suggests_names() -> None:
    with pytest.raises(KeyError, match="FSS_TEMP_VBB"):
        locate_parameter(D, "FSS_TEMP_VB")


def test_time_arguments() -> None:
    assert parse_time("12.5", D) == 12.5
    assert parse_time(None, D) is None and parse_time("", D) is None
    iso = D.epoch.iso(3600.0)
    assert parse_time(iso, D) == pytest.approx(3600.0)
    assert parse_time(iso.replace("Z", ""), D) == pytest.approx(3600.0)  # naive means UTC
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday", D)
    with pytest.raises(ValueError, match="finite"):
        parse_time("nan", D)


def test_csv_safe_keeps_formulas_as_text() -> None:
    assert csv_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert csv_safe("+1") == "'+1" and csv_safe("@x") == "'@x"
    assert csv_safe("OFF") == "OFF" and csv_safe(-5) == -5 and csv_safe(1.5) == 1.5


# -- the command line -----------------------------------------------------------------------------------------

def test_archive_cli_ingest_and_queries(tmp_path: Path, stream, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    from tests.unit.archive_data import run_ground
    cap = tmp_path / "cap.bin"
    cap.write_bytes(framed(stream.packets))
    db = str(tmp_path / "run" / "a.db")
    code, out, err = run_ground(monkeypatch, capsys, "archive", "ingest", str(cap), "--db", db, "--progress")
    assert code == 0, err
    assert f"{len(stream.packets)} packets" in out and "acknowledged" in out
    assert out.strip().endswith(f"{len(stream.packets)} records acknowledged (committed)")

    code, out, _ = run_ground(monkeypatch, capsys, "archive", "query", "param", "FSS_TEMP_VBB", "--db", db,
                              "--start", D.epoch.iso(T0 + 53), "--end", str(T0 + 55))
    lines = out.splitlines()
    assert code == 0 and lines[-1] == "-- 3 values of FSS_TEMP_VBB"
    assert lines[0].startswith(D.epoch.iso(T0 + 53)) and lines[0].endswith("WARN  (FSS_HK)")
    assert lines[2].endswith("ALARM  (FSS_HK)")

    code, out, _ = run_ground(monkeypatch, capsys, "archive", "query", "param", "FSS_MODE", "--db", db, "--csv",
                              "--limit", "2")
    assert code == 0 and out.splitlines()[0].startswith("time,utc,parameter,value")

    code, out, _ = run_ground(monkeypatch, capsys, "archive", "query", "events", "--db", db, "--min-severity", "low")
    assert code == 0 and out.count("FSS_BATT_LOW") == 3 and "BOOT" not in out

    code, out, _ = run_ground(monkeypatch, capsys, "archive", "query", "commands", "--db", db, "--json")
    import json
    cmds = [json.loads(x) for x in out.splitlines()]
    assert [(c["command"], c["state"]) for c in cmds] == [("FSS_SET_MODE", "SUCCESS"), ("FSS_LEVEL", "FAILED")]
    assert cmds[0]["session"] == "ingest:cap.bin"

    code, out, _ = run_ground(monkeypatch, capsys, "archive", "info", "--db", db, "--check")
    assert code == 0 and "integrity ok" in out


@pytest.mark.parametrize("argv, message", [
    (["archive", "query", "param", "FSS_TEMP_VB"], "unknown parameter 'FSS_TEMP_VB'; did you mean FSS_TEMP_VBB"),
    (["archive", "query", "param", "FSS_MODE", "--start", "soon"], "--start 'soon' is neither"),
    (["archive", "query", "param", "FSS_MODE", "--start", "10", "--end", "5"], "is before --start"),
    (["archive", "query", "events", "--severity", "SEVERE"], "invalid choice"),
    (["archive", "ingest", "/nonexistent/capture.bin"], "cannot read /nonexistent/capture.bin"),
])
def test_archive_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, db: Path, argv: list[str], message: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    from tests.unit.archive_data import run_ground
    code, _, err = run_ground(monkeypatch, capsys, *argv, "--db", str(db))
    assert code == 2
    assert message in err and "Traceback" not in err


def test_archive_cli_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture) -> None:
    from tests.unit.archive_data import run_ground
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00" * 5000)
    for argv in (["archive", "query", "commands"], ["archive", "ingest", str(bad)], ["replay", str(bad)],
                 ["export", "raw", "--out", str(tmp_path / "o.bin")]):
        db_args = [] if argv[0] == "replay" else ["--db", str(bad)]
        if argv[:2] == ["archive", "ingest"]:
            good = tmp_path / "cap.bin"
            good.write_bytes(b"")
            argv = ["archive", "ingest", str(good)]
        code, out, err = run_ground(monkeypatch, capsys, *argv, *db_args)
        if argv[0] == "replay":  # not an SQLite file: replayed as a capture of garbage, clearly marked
            assert code == 0 and "0 packets, 1 damaged" in out and "!! no_sec_hdr" in out
            continue
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "not an archive" in err and "Traceback" not in err
