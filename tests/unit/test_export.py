"""Exports: raw concatenated packets (read back by ccsdspy and space-packet-parser), CSV, and replay."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pytest

from fsw.dictionary import load_dictionary
from fsw.protocol import PusTm
from ground.archive import Archive, ArchiveWriter
from ground.archive_query import locate_parameter
from ground.decoding import PacketDecoder
from ground.export import CSV_COLUMNS, export_csv, export_raw
from ground.replay import iter_archive, iter_capture, iter_source, pace
from ground.xtce import build_xtce
from tests.unit.archive_data import T0, build_stream, framed

D = load_dictionary()


@pytest.fixture(scope="module")
def stream():
    return build_stream(D)


@pytest.fixture()
def db(tmp_path: Path, stream) -> Path:
    path = tmp_path / "a.db"
    dec = PacketDecoder(D)
    with ArchiveWriter(path, threaded=False) as w:
        for i, p in enumerate(stream.packets):
            w.add(p, dec.decode(p), rx_time=5000.0 + i * 0.5, link="pty")
        w.add(b"\x01\x02\x03", {"dropped": "no_sync", "bytes": 3}, 6000.0, "pty")  # damaged bytes stay out
    return path


# -- raw ----------------------------------------------------------------------------------------------------

def test_raw_export_reads_back_in_ccsdspy(tmp_path: Path, db: Path, stream) -> None:
    ccsdspy_utils = pytest.importorskip("ccsdspy.utils")
    out = tmp_path / "all.bin"
    with Archive(db) as a, open(out, "wb") as f:
        n, size = export_raw(a, f, include_sent=True)
    assert out.read_bytes() == b"".join(stream.packets)
    assert n == len(stream.packets) and size == out.stat().st_size
    hdr = ccsdspy_utils.read_primary_headers(str(out))
    expected = [((p[0] << 8 | p[1]) & 0x7FF, (p[2] << 8 | p[3]) & 0x3FFF) for p in stream.packets]
    assert list(zip(hdr["CCSDS_APID"].tolist(), hdr["CCSDS_SEQUENCE_COUNT"].tolist())) == expected
    by_apid = ccsdspy_utils.split_by_apid(str(out))
    fss = D.system("FSS").apid
    assert by_apid[fss].getvalue() == b"".join(p for p in stream.packets if (p[0] << 8 | p[1]) & 0x7FF == fss)


def test_raw_export_filters_by_apid_time_and_direction(tmp_path: Path, db: Path, stream) -> None:
    fss = D.system("FSS").apid
    buf = io.BytesIO()
    with Archive(db) as a:
        export_raw(a, buf, apids=[fss], start=T0 + 10, end=T0 + 20)
    data = buf.getvalue()
    pkts = [raw for raw, _ in iter_capture(data, PacketDecoder(D), "raw")]
    assert pkts and all((p[0] << 8 | p[1]) & 0x7FF == fss for p in pkts)
    times = [PacketDecoder(D).decode(p)["time"] for p in pkts]
    assert min(times) >= T0 + 10 and max(times) <= T0 + 20
    assert not any(p[0] & 0x10 for p in pkts)  # telecommands carry no time stamp: a time range leaves them out
    # without filters, everything received comes out, the telecommands seen in the capture included
    with Archive(db) as a:
        buf2 = io.BytesIO()
        export_raw(a, buf2)
    assert buf2.getvalue() == b"".join(stream.packets)


def test_raw_export_decodes_in_space_packet_parser(tmp_path: Path, db: Path) -> None:
    spp = pytest.importorskip("space_packet_parser")
    xml = tmp_path / "m.xml"
    xml.write_text(build_xtce(D).xml, encoding="utf-8")
    out = tmp_path / "tm.bin"
    with Archive(db) as a, open(out, "wb") as f:
        export_raw(a, f, apids=[D.system("FSS").apid])
    defn = spp.load_xtce(xml)
    dec = PacketDecoder(D)
    seen = 0
    with open(out, "rb") as f:
        for raw in spp.ccsds_generator(f):
            if raw[0] & 0x10:
                continue  # telecommands: the XTCE telemetry definition does not describe them
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                theirs = defn.parse_bytes(raw)
            ours = dec.decode(bytes(raw))
            if ours["name"] == "FSS_HK":
                assert float(theirs["FSS_TEMP_VBB"]) == pytest.approx(ours["params"]["FSS_TEMP_VBB"], abs=1e-9)
                seen += 1
    assert seen == 60


# -- CSV ----------------------------------------------------------------------------------------------------

def test_csv_export_content(db: Path, stream) -> None:
    locs = [locate_parameter(D, "FSS_TEMP_VBB"), locate_parameter(D, "FSS_MODE"),
            locate_parameter(D, "FSS_BATT_SOC_EVT")]
    buf = io.StringIO()
    with Archive(db) as a:
        n = export_csv(a, D, locs, buf, start=T0 + 9, end=T0 + 11)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert tuple(rows[0].keys()) == CSV_COLUMNS and n == len(rows)
    temps = [r for r in rows if r["parameter"] == "FSS_TEMP_VBB"]
    assert [float(r["time"]) for r in temps] == [T0 + 9, T0 + 10, T0 + 11]
    expected = dict(stream.temps)
    for r in temps:
        assert float(r["value"]) == pytest.approx(expected[float(r["time"])])
        assert r["unit"] == "degC" and r["source"] == "FSS_HK" and r["apid"] == str(D.system("FSS").apid)
        assert r["utc"] == D.epoch.iso(float(r["time"]))
    modes = [r["value"] for r in rows if r["parameter"] == "FSS_MODE"]
    assert modes == ["SCIENCE"] * 3
    evt = [r for r in rows if r["parameter"] == "FSS_BATT_SOC_EVT"]
    assert [(float(r["time"]), r["value"], r["source"]) for r in evt] == [(T0 + 10.5, "30", "FSS_BATT_LOW")]
    assert [float(r["time"]) for r in rows] == sorted(float(r["time"]) for r in rows)


def test_csv_marks_limits(db: Path) -> None:
    buf = io.StringIO()
    with Archive(db) as a:
        export_csv(a, D, [locate_parameter(D, "FSS_TEMP_VBB")], buf)
    limits = {r["limit"] for r in csv.DictReader(io.StringIO(buf.getvalue()))}
    assert limits == {"", "warn", "alarm"}


# -- replay -------------------------------------------------------------------------------------------------

def test_replay_of_an_archive_redecodes_every_record(db: Path, stream) -> None:
    with Archive(db) as a:
        items = list(iter_archive(a, PacketDecoder(D)))
    assert [raw for _, raw, rec in items if "dropped" not in rec] == stream.packets
    assert items[0][0] == 5000.0 and items[0][2]["link"] == "pty"  # reception times and link come back
    assert items[-1][2] == {"dropped": "no_sync", "bytes": 3, "archive_id": len(stream.packets) + 1}
    names = [rec["name"] for _, _, rec in items if "dropped" not in rec]
    assert names.count("FSS_HK") == 60 and "FSS_SET_MODE" in names


def test_truncated_capture_replays_with_a_marked_record(tmp_path: Path, stream) -> None:
    for fmt, blob in (("raw", b"".join(stream.packets[:5])), ("framed", framed(stream.packets[:5]))):
        cut = tmp_path / f"cut-{fmt}.bin"
        cut.write_bytes(blob[:-7])
        recs = [rec for _, _, rec in iter_source(cut, PacketDecoder(D))]
        assert [r["name"] for r in recs[:4]] == ["FSS_HK"] * 4
        assert recs[-1]["error"] == "truncated", (fmt, recs[-1])
        assert len(recs) == 5


def test_pacing_follows_the_recorded_times_at_any_speed() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(dt: float) -> None:
        sleeps.append(round(dt, 9))
        now[0] += dt

    items = [(100.0, "a"), (101.0, "b"), (None, "tc"), (103.0, "c"), (50.0, "new recording"), (52.0, "d")]
    out = list(pace(items, 2.0, clock=lambda: now[0], sleep=sleep))
    assert out == ["a", "b", "tc", "c", "new recording", "d"]
    assert sleeps == [0.5, 1.0, 1.0]
    sleeps.clear()
    list(pace([(0.0, 1), (3600.0, 2), (3601.0, 3)], 1.0, clock=lambda: now[0], sleep=sleep, max_gap=10))
    assert sleeps == [10.0, 1.0]
    sleeps.clear()
    assert list(pace(items, None, clock=lambda: now[0], sleep=sleep)) == [x for _, x in items] and sleeps == []
    with pytest.raises(ValueError):
        list(pace(items, 0, clock=lambda: now[0], sleep=sleep))


def test_unknown_apid_in_a_capture_is_a_marked_record(tmp_path: Path) -> None:
    p = tmp_path / "u.bin"
    p.write_bytes(PusTm(0x055, 3, 25, b"\x00\x01").pack())
    (rec,) = [rec for _, _, rec in iter_source(p, PacketDecoder(D))]
    assert rec["error"] == "unknown_apid" and rec["apid"] == 0x55


# -- the command line -----------------------------------------------------------------------------------------

def test_export_and_replay_cli(tmp_path: Path, db: Path, stream, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture) -> None:
    import json

    from tests.unit.archive_data import run_ground
    out_csv = tmp_path / "o" / "t.csv"
    code, out, err = run_ground(monkeypatch, capsys, "export", "csv", "FSS_TEMP_VBB", "FSS_BATT_V", "--db", str(db),
                                "--out", str(out_csv), "--start", str(T0), "--end", str(T0 + 9))
    assert code == 0, err
    assert out.strip() == f"wrote 20 values of FSS_TEMP_VBB, FSS_BATT_V to {out_csv}"
    assert len(out_csv.read_text().splitlines()) == 21
    out_raw = tmp_path / "o" / "fss.bin"
    code, out, err = run_ground(monkeypatch, capsys, "export", "raw", "--db", str(db), "--out", str(out_raw),
                                "--apid", "0x20", "--apid", "33")
    assert code == 0, err
    fss = [p for p in stream.packets if (p[0] << 8 | p[1]) & 0x7FF == 0x20]
    assert out_raw.read_bytes() == b"".join(fss)
    code, _, err = run_ground(monkeypatch, capsys, "export", "raw", "--db", str(db), "--out", str(out_raw),
                              "--apid", "4000")
    assert code == 2 and "APID 4000 outside 0..2047" in err

    code, out, err = run_ground(monkeypatch, capsys, "replay", str(db), "--max", "--json")
    assert code == 0, err
    recs = [json.loads(line) for line in out.splitlines()]
    assert len(recs) == len(stream.packets) + 1 and recs[-1]["dropped"] == "no_sync"
    cut = tmp_path / "cut.bin"
    cut.write_bytes(b"".join(stream.packets[:3])[:-4])
    code, out, err = run_ground(monkeypatch, capsys, "replay", str(cut), "--speed", "1000")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-2].startswith("!! truncated") and "2 packets, 1 damaged" in lines[-1]
    code, _, err = run_ground(monkeypatch, capsys, "replay", str(tmp_path / "nothing.bin"))
    assert code == 2 and "no such file" in err
    code, _, err = run_ground(monkeypatch, capsys, "replay", str(db), "--max", "--speed", "2")
    assert code == 2 and "not allowed with argument" in err


@pytest.mark.parametrize("seed", range(6))
def test_fast_raw_walk_gives_the_decoders_records_and_every_byte(seed: int, stream) -> None:
    """The capture walker's fast path must not change a single record of decoding.iter_raw_records."""
    import random

    from ground.decoding import iter_raw_records
    rng = random.Random(seed)
    blob = bytearray()
    for p in stream.packets:
        p = bytearray(p)
        r = rng.random()
        if r < 0.08:
            p[rng.randrange(len(p))] ^= 1 << rng.randrange(8)      # bit flip (CRC, header or length)
        elif r < 0.12:
            p = p[:rng.randrange(1, len(p))]                        # cut short
        elif r < 0.16:
            p[4:6] = rng.randrange(65536).to_bytes(2, "big")        # impossible length
        blob += p
        if rng.random() < 0.05:
            blob += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
    data = bytes(blob)
    dec = PacketDecoder(D)
    ours = list(iter_capture(data, dec, "raw"))
    assert [rec for _, rec in ours] == list(iter_raw_records(data, dec))
    assert b"".join(raw for raw, _ in ours) == data
