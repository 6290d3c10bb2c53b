"""Deterministic packet streams for the archive, replay, export and plot tests (built from the dictionary)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from fsw.dictionary import Dictionary
from fsw.protocol import PusTc, PusTm

T0 = 1000.0  # mission seconds of the first packet


@dataclass
class Stream:
    packets: list[bytes] = field(default_factory=list)
    #: FSS_TEMP_VBB value of each FSS_HK packet, by packet time
    temps: list[tuple[float, float]] = field(default_factory=list)
    batt: list[tuple[float, float]] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (time, event, severity)


def _report(d: Dictionary, name: str, apid: int, tc: PusTc, t: float, **extra: Any) -> bytes:
    pkt = d.packet(name)
    values = {"TC_PACKET_ID": 0x1800 | tc.apid, "TC_SEQ_CTRL": 0xC000 | tc.seq_count, **extra}
    return PusTm(apid, 1, pkt.subservice, d.encode_tm(pkt, values), time=t).pack()


def build_stream(d: Dictionary, n_hk: int = 60) -> Stream:
    """FSS housekeeping once a second with a temperature ramp through its limits, events, and two commands."""
    s = Stream()
    fss = d.system("FSS")
    hk = d.packet("FSS_HK")
    lander = d.lander
    seq = 0
    for i in range(n_hk):
        t = T0 + i
        temp = 20.0 + i * 0.75          # crosses warn (45) at i=34 and alarm (60) at i=54
        batt = 29.0 + (i % 5) * 0.1
        data = d.encode_tm(hk, {"FSS_MODE": "SCIENCE", "FSS_VBB_GAIN": "MID", "FSS_TEMP_VBB": temp,
                                "FSS_TEMP_EBOX": 22.0, "FSS_BATT_V": batt, "FSS_BATT_SOC": 90, "FSS_TILT": 120,
                                "FSS_SAMPLES": i * 320, "FSS_TIME_ERR": 5})
        seq = (seq + 1) & 0x3FFF
        s.packets.append(PusTm(fss.apid, 3, 25, data, seq_count=seq, time=t).pack())
        # the decoded value is the calibrated raw integer: keep what the decoder will see
        s.temps.append((t, round(temp / 0.01) * 0.01))
        s.batt.append((t, round(batt / 0.001) * 0.001))
        if i % 20 == 10:
            evt = fss.event("FSS_BATT_LOW")
            s.packets.append(PusTm(fss.apid, 5, evt.subservice, d.encode_event(evt, {"FSS_BATT_SOC_EVT": 40 - i}),
                                   time=t + 0.5).pack())
            s.events.append((t + 0.5, "FSS_BATT_LOW", evt.severity))
        if i == 5:
            evt = lander.event("BOOT")
            s.packets.append(PusTm(lander.apid, 5, evt.subservice, d.encode_event(evt, {"BOOT_RESTARTS": 2}),
                                   time=t + 0.25).pack())
            s.events.append((t + 0.25, "BOOT", evt.severity))
        if i == 12:  # FSS_SET_MODE: accepted, started, completed
            cmd = d.command("FSS_SET_MODE")
            tc = PusTc(cmd.apid, cmd.service, cmd.subservice, d.encode_command(cmd, {"mode": "SCIENCE"}), seq_count=1)
            s.packets.append(tc.pack())
            for name in ("ACCEPT_OK", "START_OK", "COMPLETE_OK"):
                s.packets.append(_report(d, name, fss.apid, tc, t + 0.1))
        if i == 20:  # FSS_LEVEL: accepted, then refused at start
            cmd = d.command("FSS_LEVEL")
            tc = PusTc(cmd.apid, cmd.service, cmd.subservice, d.encode_command(cmd, {"target_urad": 100}),
                       seq_count=2)
            s.packets.append(tc.pack())
            s.packets.append(_report(d, "ACCEPT_OK", fss.apid, tc, t + 0.1))
            s.packets.append(_report(d, "START_FAIL", fss.apid, tc, t + 0.2, FAILURE_CODE="WRONG_MODE"))
    return s


def framed(packets: list[bytes]) -> bytes:
    from fsw.protocol import frame
    return b"".join(frame(p) for p in packets)


def run_ground(monkeypatch: Any, capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Run ``ground ARGV`` with the archive, replay, export, plot and dictionary-export commands registered."""
    import ground.cli as cli
    from ground import cli_ops

    subs = list(cli.SUBCOMMANDS)
    have = {f.__name__ for f in subs}
    for f in (cli_ops.add_archive_parser, cli_ops.add_replay_parser, cli_ops.add_export_parser,
              cli_ops.add_plot_parser):
        if f.__name__ not in have:
            subs.append(f)
    actions = list(cli.DICTIONARY_ACTIONS)
    if cli_ops.add_dictionary_export_parser.__name__ not in {f.__name__ for f in actions}:
        actions.append(cli_ops.add_dictionary_export_parser)
    monkeypatch.setattr(cli, "SUBCOMMANDS", subs)
    monkeypatch.setattr(cli, "DICTIONARY_ACTIONS", actions)
    monkeypatch.delenv("GROUND_DEBUG", raising=False)
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


if __name__ == "__main__":  # write a sample capture: python -m tests.unit.archive_data OUT
    from fsw.dictionary import load_dictionary
    with open(sys.argv[1], "wb") as f:
        f.write(b"".join(build_stream(load_dictionary()).packets))
