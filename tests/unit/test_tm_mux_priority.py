"""Channel priority holds for packets that reach a channel through its feeder, too.

The space link feeds the real-time channel (VC 0) from its live queue and the
playback channel (VC 1) from the packet stores, both through feeders.  A
playback packet cut across frames leaves a partial packet on VC 1; that must
not make VC 1 win over real-time data waiting in VC 0's feeder.  (It did: on
the 2 kbps cruise link the launch hour's playback held back the live
verification reports for ten minutes.)
"""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.protocol.pus import PusTm
from fsw.protocol.tmframe import Clcw, TmFrameConfig, TmMultiplexer, VcReassembler, parse_tm_frame
from tests.conftest import examples

CFG = TmFrameConfig(scid=0x1A5, frame_len=64)
CLCW0 = Clcw(0, 0).pack()


def _pkt(i: int, n: int, apid: int) -> bytes:
    return PusTm(apid, 3, 25, bytes([i & 0xFF]) * n, seq_count=i & 0x3FFF, time=float(i)).pack()


def _mux(live: deque, stored: deque) -> TmMultiplexer:
    mux = TmMultiplexer(CFG, ocf_source=lambda: CLCW0, idle_frames=False)
    mux.set_feeder(0, lambda room: live.popleft() if live else None)
    mux.set_feeder(1, lambda room: stored.popleft() if stored else None)
    return mux


def test_live_data_preempts_a_playback_packet_cut_across_frames() -> None:
    live: deque = deque()
    stored = deque(_pkt(i, 200, 0x20) for i in range(5))   # each spans several 64-octet frames
    mux = _mux(live, stored)
    first = parse_tm_frame(mux.next_frame(), CFG)
    assert first.vcid == 1                                     # only playback to send
    live.append(_pkt(0, 10, 0x10))                              # a live report arrives mid-packet
    nxt = parse_tm_frame(mux.next_frame(), CFG)
    assert nxt.vcid == 0                                        # ... and goes out in the very next frame
    assert parse_tm_frame(mux.next_frame(), CFG).vcid == 1     # then playback resumes where it stopped


@settings(max_examples=examples(100))
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 300)), min_size=1, max_size=40))
def test_no_frame_goes_to_playback_while_live_data_waits(arrivals: list[tuple[bool, int]]) -> None:
    """Packets arrive one per frame slot; whenever live data is waiting, the frame is a live one, and
    both channels reassemble to exactly what was sent, in order."""
    live: deque = deque()
    stored: deque = deque()
    mux = _mux(live, stored)
    sent: dict[int, list[bytes]] = {0: [], 1: []}
    got: dict[int, list[bytes]] = {0: [], 1: []}
    rx = {0: VcReassembler(), 1: VcReassembler()}
    pending = list(arrivals)
    for k in range(2000):
        if pending:
            is_live, n = pending.pop(0)
            p = _pkt(k, n, 0x10 if is_live else 0x20)
            (live if is_live else stored).append(p)
            sent[0 if is_live else 1].append(p)
        live_waiting = bool(live) or mux.has_data(0)
        raw = mux.next_frame()
        if raw is None:
            if not pending:
                break
            continue
        f = parse_tm_frame(raw, CFG)
        if live_waiting:
            assert f.vcid == 0
        got[f.vcid] += [p for p in rx[f.vcid].feed(f) if isinstance(p, bytes)]
    assert got == sent
