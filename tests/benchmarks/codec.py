"""Codec benchmark: our protocol and decoding code against independent peers, on the same bytes in the same run.

- telemetry decode pipeline: find frames (ASM), header, CRC check, PUS parse.  Ours: ``Deframer.feed``
  on the stream in random chunks, then ``parse_packet``.  Peer: spacepackets, the stream split on the
  ASM and each piece given to ``PusTm.unpack(data, timestamp_len=6)`` (which checks the CRC too).
- telecommand encoding: ``PusTc(...).pack()`` in both libraries, with the same fields.
- parameters to engineering values: our ``PacketDecoder`` against space-packet-parser reading our own
  XTCE export (``ground.xtce``); the two are checked to agree on the first packets.
"""

from __future__ import annotations

import io
import math
import random
import warnings

from fsw.dictionary import load_dictionary
from fsw.protocol import ASM, Deframer, PusTc, frame
from fsw.protocol.pus import parse_packet

from . import interleaved_best, row


def hk_packets(n: int, seed: int = 1) -> list[bytes]:
    """``n`` housekeeping packets of every unit of the reference mission, random raw values."""
    from fsw.protocol import PusTm

    d = load_dictionary()
    rng = random.Random(seed)
    kinds = [(s.apid, p) for s in d.systems for p in s.telemetry if p.category == "hk"]
    out = []
    for i in range(n):
        apid, p = kinds[i % len(kinds)]
        raw = {prm.name: (rng.choice(list(prm.enum.values.values())) if prm.enum is not None else rng.randrange(100))
               for prm in p.params}
        out.append(PusTm(apid, p.service, p.subservice, d.encode_tm(p, raw, eng=False), seq_count=i & 0x3FFF,
                         time=1000 + i * 0.01).pack())
    return out


def chunks(data: bytes, seed: int = 2, largest: int = 1024) -> list[bytes]:
    """``data`` cut into reads of random sizes (1..largest bytes), as a serial port hands them over."""
    rng = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        k = rng.randint(1, largest)
        out.append(data[pos:pos + k])
        pos += k
    return out


def _decode_pipeline(quick: bool) -> dict:
    from spacepackets.ecss import PusTm as SpTm

    d = load_dictionary()
    pkts = hk_packets(5_000 if quick else 40_000)
    stream = b"".join(frame(p) for p in pkts)
    reads = chunks(stream)
    n = len(pkts)

    def ours() -> int:
        df = Deframer(max_packet=d.max_packet)
        got = 0
        for c in reads:
            for item in df.feed(c):
                parse_packet(item)  # a Dropped would raise here: there are none
                got += 1
        assert got == n, got
        return got

    def peer() -> int:
        got = 0
        for part in stream.split(ASM)[1:]:
            SpTm.unpack(part, timestamp_len=6)
            got += 1
        assert got == n, got
        return got

    # same packets out of both, field by field, for the first ones
    df = Deframer(max_packet=d.max_packet)
    mine = [parse_packet(x) for c in reads[:50] for x in df.feed(c)]
    for m, part in zip(mine, stream.split(ASM)[1:]):
        s = SpTm.unpack(part, timestamp_len=6)
        assert (m.apid, m.service, m.subservice, m.seq_count, m.source_data) == \
               (s.apid, s.service, s.subservice, s.seq_count, bytes(s.source_data)), (m, s)
    best = interleaved_best({"ours": ours, "peer": peer}, 3 if quick else 7)
    avg = len(stream) / n
    return {"ours": n / best["ours"], "peer": n / best["peer"], "avg": avg}


def _tc_encode(quick: bool) -> dict:
    from spacepackets.ecss import PusTc as SpTc

    rng = random.Random(3)
    n = 5_000 if quick else 40_000
    fields = [(rng.choice((0x010, 0x020, 0x021, 0x030)), 8, 1, bytes(rng.randrange(256) for _ in range(rng.randint(2, 16))),
               i & 0x3FFF) for i in range(n)]

    def ours() -> None:
        for apid, svc, sub, data, seq in fields:
            PusTc(apid, svc, sub, data, seq_count=seq, source_id=0x100).pack()

    def peer() -> None:
        for apid, svc, sub, data, seq in fields:
            SpTc(service=svc, message_subtype=sub, apid=apid, app_data=data, seq_count=seq, source_id=0x100).pack()

    for apid, svc, sub, data, seq in fields[:200]:
        assert PusTc(apid, svc, sub, data, seq_count=seq, source_id=0x100).pack() == bytes(
            SpTc(service=svc, message_subtype=sub, apid=apid, app_data=data, seq_count=seq, source_id=0x100).pack())
    best = interleaved_best({"ours": ours, "peer": peer}, 3 if quick else 9)
    return {"ours": n / best["ours"], "peer": n / best["peer"]}


def _plain(v: object) -> object:
    """space-packet-parser values subclass int/float/str; compare as the builtin type."""
    if type(v).__name__ == "BoolParameter":
        return bool(v)
    for t in (bool, int, float, str):
        if isinstance(v, t):
            return t(v)
    return v


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-6)  # type: ignore[arg-type]
    return a == b


def _param_decode(quick: bool) -> dict:
    from space_packet_parser.xtce.definitions import XtcePacketDefinition

    from ground.decoding import PacketDecoder
    from ground.xtce import build_xtce

    d = load_dictionary()
    doc = build_xtce(d)
    defn = XtcePacketDefinition.from_xtce(io.BytesIO(doc.xml.encode("utf-8")))
    pkts = hk_packets(1_000 if quick else 5_000, seed=4)
    dec = PacketDecoder(d)
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for raw in pkts[:100]:
            ours, theirs = dec.decode(raw), defn.parse_bytes(raw)
            container = doc.containers[ours["name"]]
            for pname, value in ours["params"].items():
                names = doc.param_names[(container, pname)]
                values = value if isinstance(value, list) else [value]
                assert len(names) == len(values)
                for v, nm in zip(values, names):
                    assert _same(v, _plain(theirs[nm])), (ours["name"], pname, v, theirs[nm])
                    checked += 1
    assert checked > 100
    params = sum(len(dec.decode(p)["params"]) for p in pkts[:100]) / 100

    def ours() -> None:
        for raw in pkts:
            dec.decode(raw)

    def peer() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for raw in pkts:
                defn.parse_bytes(raw)

    best = interleaved_best({"ours": ours, "peer": peer}, 2 if quick else 3)
    return {"ours": len(pkts) / best["ours"], "peer": len(pkts) / best["peer"], "checked": checked, "params": params}


def run(quick: bool) -> list[dict]:
    rows = []
    r = _decode_pipeline(quick)
    ratio = r["ours"] / r["peer"]
    rows.append(row("TM decode pipeline (deframe, header, CRC, PUS parse) vs spacepackets unpack", r["ours"],
                    peer=r["peer"], goal=">= 5x", met=ratio >= 5, unit="packets/s",
                    note=f"same stream of HK packets of every unit, {r['avg']:.0f} B framed on average; "
                         f"ours fed in random 1..1024 B reads, the peer given the whole stream split on the ASM"))
    r = _tc_encode(quick)
    ratio = r["ours"] / r["peer"]
    rows.append(row("TC encoding PusTc(...).pack() vs spacepackets PusTc(...).pack()", r["ours"], peer=r["peer"],
                    goal=">= 5x", met=ratio >= 5, unit="TCs/s",
                    note="construction with validation plus pack; 2..16 B of application data; "
                         "byte-identical output checked"))
    r = _param_decode(quick)
    rows.append(row("parameters to engineering values: PacketDecoder vs space-packet-parser (our XTCE)",
                    r["ours"], peer=r["peer"], unit="packets/s",
                    note=f"{r['params']:.0f} parameters per packet on average; {r['checked']} values agreed "
                         f"between the two; ours also checks the CRC and limits, the peer does neither"))
    return rows
