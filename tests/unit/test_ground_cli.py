"""The ground CLI (run in-process with capsys) and the session logic over an in-memory fake link.

The fake link runs on a simulated clock: ``read(timeout)`` returns queued
bytes at once or moves the clock by ``timeout``, so waits and timeouts are
deterministic and take no real time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from fsw.core.clock import SimClock
from fsw.dictionary import load_dictionary
from fsw.protocol import Deframer, PusTm, frame
from ground import cli
from ground.commanding import HazardousCommandError
from ground.decoding import PacketDecoder
from ground.session import GroundSession, LinkUnavailable
from tests.unit.test_ground_commanding import TOO_FAR, write_mission

D = load_dictionary()
T0 = 1000.0


# -- a fake flight software behind an in-memory link ---------------------------------------------------------

def report(d, tc, sub, reporter, code=None, step=None, t=T0):
    names = {1: "ACCEPT_OK", 2: "ACCEPT_FAIL", 3: "START_OK", 4: "START_FAIL", 5: "PROGRESS_OK",
             6: "PROGRESS_FAIL", 7: "COMPLETE_OK", 8: "COMPLETE_FAIL"}
    values = {"TC_PACKET_ID": tc.packet_id, "TC_SEQ_CTRL": (tc.seq_flags << 14) | tc.seq_count}
    if step is not None:
        values["STEP"] = step
    if code is not None:
        values.update(FAILURE_CODE=d.failure_code(code), FAILURE_DATA=0)
    return frame(PusTm(reporter, 1, sub, d.encode_tm(d.packet(names[sub]), values, eng=False), time=t).pack())


def hk_frame(d=D, seq=0, t=T0, **values):
    pkt = d.packet("FSS_HK")
    data = d.encode_tm(pkt, {"FSS_MODE": "SCIENCE", "FSS_TEMP_VBB": 18.0, "FSS_BATT_V": 29.0,
                             "FSS_BATT_SOC": 90, **values})
    return frame(PusTm(d.system("FSS").apid, 3, 25, data, seq_count=seq, time=t).pack())


class FakeFlightSoftware:
    """Answers telecommands by name: 'ok' (all stages), 'fail:<stage>:<code>', 'reject:<code>', 'silent'."""

    def __init__(self, d, behaviour=None):
        self.d = d
        self.dec = PacketDecoder(d)
        self.behaviour = behaviour or {}
        self.received = []

    def __call__(self, packet: bytes) -> list[bytes]:
        rec, tc = self.dec.decode_packet(packet)
        self.received.append(rec)
        lander = self.d.lander.apid
        how = self.behaviour.get(rec["name"], "ok")
        if how == "silent":
            return []
        if how.startswith("reject:"):
            return [report(self.d, tc, 2, lander, how.split(":")[1])]
        out = [report(self.d, tc, 1, lander), report(self.d, tc, 3, tc.apid)]
        if how.startswith("fail:"):
            _, stage, code = how.split(":")
            return out[:1] + [report(self.d, tc, 4, tc.apid, code)] if stage == "start" else \
                out + [report(self.d, tc, 8, tc.apid, code)]
        return out + [report(self.d, tc, 5, tc.apid, step=1), report(self.d, tc, 7, tc.apid)]


class FakeLink:
    def __init__(self, clock, responder=None, connected=True, chunk=None):
        self.clock = clock
        self.responder = responder
        self.connected = connected
        self.rx = bytearray()
        self.written = []
        self.opened = self.closed = False
        self.deframer = Deframer()
        self.chunk = chunk

    def open(self):
        self.opened = True

    def close(self):
        self.closed = True

    def read(self, timeout):
        if self.rx:
            n = self.chunk or len(self.rx)
            data = bytes(self.rx[:n])
            del self.rx[:n]
            return data
        self.clock.advance(max(timeout, 0.0))
        return b""

    def write(self, data):
        self.written.append(bytes(data))
        for item in self.deframer.feed(data):
            if isinstance(item, bytes) and self.responder is not None:
                for f in self.responder(item):
                    self.rx += f

    def inject(self, data):
        self.rx += data


def make_session(d=D, behaviour=None, connected=True, chunk=None):
    clock = SimClock(T0)
    fsw = FakeFlightSoftware(d, behaviour)
    link = FakeLink(clock, fsw, connected, chunk)
    s = GroundSession("fake://", d, link=link, clock=clock, connect_timeout_s=1.0)
    return s, link, fsw, clock


# -- session --------------------------------------------------------------------------------------------------

def test_session_send_success_reports_every_stage():
    s, link, fsw, clock = make_session()
    seen = []
    with s:
        res = s.send("FSS_SET_MODE", mode="SCIENCE", on_update=seen.append)
    assert link.opened and link.closed
    assert res.ok and res.state == "SUCCESS" and res.command == "FSS_SET_MODE"
    assert [u.report.stage for u in seen] == ["acceptance", "start", "progress", "completion"]
    assert fsw.received[0]["name"] == "FSS_SET_MODE" and fsw.received[0]["params"] == {"mode": "SCIENCE"}
    # the reports are in the backlog too, annotated with the command they verify
    recs = list(s.packets(timeout=0))
    assert [r["stage"] for r in recs] == ["acceptance", "start", "progress", "completion"]
    assert all(r["command"] == "FSS_SET_MODE" for r in recs)


def test_session_sequence_counts_advance_per_apid():
    s, link, fsw, _ = make_session()
    s.send("PING", system="FSS")
    s.send("PING", system="FSS")
    s.send("PING")
    assert [(r["apid"], r["seq_count"]) for r in fsw.received] == \
        [(D.system("FSS").apid, 0), (D.system("FSS").apid, 1), (D.lander.apid, 0)]


def test_session_failure_and_rejection():
    s, *_ = make_session(behaviour={"FSS_LEVEL": "fail:start:WRONG_MODE", "PING": "reject:LINK_DOWN"})
    r = s.send("FSS_LEVEL", target_urad=10)
    assert r.state == "FAILED" and r.failure == "WRONG_MODE" and r.stage("start").reporter == "FSS"
    r = s.send("PING", system="LUSEE")
    assert r.state == "FAILED" and r.failure == "LINK_DOWN" and r.reports[0].reporter == D.lander.name


def test_session_timeout_uses_the_injected_clock():
    s, link, fsw, clock = make_session(behaviour={"PING": "silent"})
    r = s.send("PING", timeout=3.0)
    assert r.state == "TIMEOUT" and r.timed_out and clock.now() >= T0 + 3.0
    assert clock.now() < T0 + 3.0 + 2 * s.poll_interval_s


def test_session_default_timeout_comes_from_the_dictionary():
    s, *_ = make_session(behaviour={"LMS_DEPLOY": "silent"})
    r = s.send("LMS_DEPLOY", item="MAST")
    assert r.deadline - r.sent_at == D.command("LMS_DEPLOY").timeout_s


def test_session_validates_before_sending_and_needs_a_link():
    s, link, *_ = make_session()
    with pytest.raises(KeyError):
        s.send("NO_SUCH_COMMAND")
    from fsw.dictionary import ArgumentError
    with pytest.raises(ArgumentError):
        s.send("FSS_LEVEL", target_urad=99999)
    assert link.written == []
    s2, link2, *_ = make_session(connected=False)
    with pytest.raises(LinkUnavailable):
        s2.send("PING")
    assert link2.written == [] and s2.seq.peek(D.lander.apid) == 0


def test_session_hazardous_needs_confirmation(tmp_path):
    d = load_dictionary(write_mission(tmp_path))
    s, link, fsw, _ = make_session(d)
    with pytest.raises(HazardousCommandError):
        s.send("PAY_CUT_CABLE", seconds=2)
    assert link.written == []
    assert s.send("PAY_CUT_CABLE", confirm="PAY", seconds=2).ok


def test_session_packets_wait_for_and_dropped_bytes():
    s, link, *_ = make_session(chunk=7)  # bytes arrive in small pieces
    link.inject(b"noise" + hk_frame(seq=1) + hk_frame(seq=2, FSS_TEMP_VBB=50.0))
    recs = list(s.packets(timeout=1.0))
    dropped = [r for r in recs if "dropped" in r]
    assert dropped[0] == {"dropped": "no_sync", "bytes": 4, "link": "fake://", "rx_time": pytest.approx(T0)}
    assert sum(r["bytes"] for r in dropped) == 5  # split across reads, every byte counted
    hks = [r for r in recs if r.get("name") == "FSS_HK"]
    assert [r["seq_count"] for r in hks] == [1, 2] and hks[1]["limits"] == {"FSS_TEMP_VBB": "warn"}
    assert hks[0]["link"] == "fake://" and hks[0]["rx_time"] >= T0
    link.inject(hk_frame(seq=3) + hk_frame(seq=4))
    found = s.wait_for(lambda r: r.get("seq_count") == 4, timeout=1.0)
    assert found["seq_count"] == 4
    assert s.wait_for(lambda r: True, timeout=0.5) is None
    assert s.stats["packets"] == 4 and s.stats["dropped_bytes"] == 5


def test_session_flushes_a_stale_partial_frame():
    s, link, _, clock = make_session()
    link.inject(hk_frame(seq=1)[:-3])
    recs = list(s.packets(timeout=1.0))
    # dropped once the line has been quiet for idle_flush_s
    assert recs == [{"dropped": "truncated", "bytes": len(hk_frame()) - 3, "link": "fake://",
                     "rx_time": pytest.approx(T0 + s.idle_flush_s, abs=s.poll_interval_s)}]


def test_session_records_link_events():
    s, link, *_ = make_session()
    s._on_link_event("connected", "fake://")
    (rec,) = list(s.packets(timeout=0))
    assert rec == {"link_event": "connected fake://", "link": "fake://"}


# -- CLI: helpers ---------------------------------------------------------------------------------------------

@pytest.fixture
def fake_link(monkeypatch):
    """Route the CLI's session to a fake flight software; returns a dict filled in when it is opened."""
    state = {"behaviour": {}, "connected": True, "inject": b"", "opened": 0}

    def open_session(link, dictionary, baud):
        s, lk, fsw, clock = make_session(dictionary, state["behaviour"], state["connected"])
        lk.inject(state["inject"])
        state.update(session=s, link=lk, fsw=fsw, clock=clock, spec=link, baud=baud)
        state["opened"] += 1
        return s

    monkeypatch.setattr(cli, "open_session", open_session)
    return state


def run(capsys, *argv):
    code = cli.main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ground: ") and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, err)


# -- CLI: send ------------------------------------------------------------------------------------------------

def test_cli_send_success_prints_each_stage(capsys, fake_link):
    code, out, err = run(capsys, "send", "FSS_SET_MODE", "mode=SCIENCE", "--link", "x.pty", "--baud", "9600")
    assert code == 0, err
    assert fake_link["spec"] == "x.pty" and fake_link["baud"] == 9600
    lines = out.splitlines()
    assert lines[0].startswith("sent FSS_SET_MODE mode=SCIENCE to FSS (apid 0x020, seq 0)")
    for stage, line in zip(["acceptance", "start", "progress step 1", "completion"], lines[1:5]):
        assert line.split()[0:len(stage.split())] == stage.split() and "OK" in line
    assert "from LANDER" in lines[1] and "from FSS" in lines[2]
    assert lines[-1] == "FSS_SET_MODE: SUCCESS"


def test_cli_send_failure_exit_1_with_the_code_name(capsys, fake_link):
    fake_link["behaviour"] = {"FSS_LEVEL": "fail:completion:EXECUTION_FAILED"}
    code, out, _ = run(capsys, "send", "FSS_LEVEL", "target_urad=100")
    assert code == 1
    assert "FAILED  EXECUTION_FAILED" in out and out.splitlines()[-1] == "FSS_LEVEL: FAILED (EXECUTION_FAILED)"


def test_cli_send_timeout_exit_1(capsys, fake_link):
    fake_link["behaviour"] = {"PING": "silent"}
    code, out, _ = run(capsys, "send", "PING", "--to", "LMS", "--timeout", "2")
    assert code == 1
    assert "no completion within 2.0 s" in out and out.splitlines()[-1] == "PING: TIMEOUT"


def test_cli_send_json(capsys, fake_link):
    code, out, _ = run(capsys, "send", "--json", "PING", "--to", "fss")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["type"] for o in objs] == ["sent", "stage", "stage", "stage", "stage", "result"]
    assert objs[0]["system"] == "FSS" and objs[-1]["state"] == "SUCCESS"
    assert [o["stage"] for o in objs[1:5]] == ["acceptance", "start", "progress", "completion"]


@pytest.mark.parametrize("argv,words", [
    (["send", "FSS_SET_MOD", "mode=OFF"], ["unknown command", "FSS_SET_MODE"]),
    (["send", "FSS_LEVEL", f"target_urad={TOO_FAR}"], ["FSS_LEVEL", "outside", "nothing was sent"]),
    (["send", "FSS_LEVEL", "target_urad"], ["name=value"]),
    (["send", "FSS_LEVEL"], ["target_urad is required"]),
    (["send", "FSS_SET_MODE", "mode=DANCE"], ["DANCE"]),
    (["send", "PING", "--to", "MARS"], ["unknown unit"]),
    (["send", "FSS_SET_MODE", "--to", "LMS", "mode=OFF"], ["belongs to FSS"]),
])
def test_cli_send_usage_errors_send_nothing(capsys, fake_link, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert_one_line_error(err, *words)
    assert fake_link["opened"] == 0  # checked before the link was opened


def test_cli_send_bad_option_values_exit_2(capsys, fake_link):
    code, _, err = run(capsys, "send", "PING", "--timeout", "-1")
    assert code == 2 and "must be positive" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "send", "PING", "--baud", "fast")
    assert code == 2 and "not a number" in err
    code, _, err = run(capsys, "send", "PING", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err and len(err.splitlines()) == 1
    assert fake_link["opened"] == 0


def test_cli_send_arguments_may_follow_options(capsys, fake_link):
    code, out, err = run(capsys, "send", "HK_SET_PERIOD", "sid=1", "--to", "LMS", "period_ms=500")
    assert code == 0, err
    assert fake_link["fsw"].received[0]["params"] == {"sid": 1, "period_ms": 500}
    assert fake_link["fsw"].received[0]["system"] == "LMS"


def test_cli_send_without_link_exit_1(capsys, fake_link):
    fake_link["connected"] = False
    code, out, err = run(capsys, "send", "PING")
    assert code == 1
    assert_one_line_error(err, "not connected", "nothing was sent")
    assert fake_link["link"].written == []


def test_cli_hazardous_refused_without_a_terminal(capsys, fake_link, tmp_path, monkeypatch):
    mission = str(write_mission(tmp_path))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    code, _, err = run(capsys, "--dictionary", mission, "send", "PAY_CUT_CABLE", "seconds=2")
    assert code == 2
    assert_one_line_error(err, "hazardous", "--confirm PAY", "nothing was sent")
    assert fake_link["opened"] == 0
    code, _, err = run(capsys, "--dictionary", mission, "send", "PAY_CUT_CABLE", "seconds=2", "--confirm", "BASE")
    assert code == 2 and "does not match" in err
    code, out, err = run(capsys, "--dictionary", mission, "send", "PAY_CUT_CABLE", "seconds=2", "--confirm", "PAY")
    assert code == 0, err
    assert fake_link["fsw"].received[0]["name"] == "PAY_CUT_CABLE"


def test_cli_hazardous_asks_on_a_terminal(capsys, fake_link, tmp_path, monkeypatch):
    mission = str(write_mission(tmp_path))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter(["pay", "nope"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    code, out, err = run(capsys, "--dictionary", mission, "send", "PAY_CUT_CABLE", "seconds=2")
    assert code == 0 and "HAZARDOUS" in err and "Type the unit name (PAY)" in err
    assert "Type" not in out
    code, out, err = run(capsys, "--dictionary", mission, "send", "PAY_CUT_CABLE", "seconds=2")
    assert code == 2 and "not confirmed" in err and fake_link["opened"] == 1


# -- CLI: monitor ---------------------------------------------------------------------------------------------

def test_cli_monitor_count(capsys, fake_link):
    fake_link["inject"] = hk_frame(seq=1) + b"xx" + hk_frame(seq=2, FSS_TEMP_VBB=70.0) + hk_frame(seq=3)
    code, out, _ = run(capsys, "monitor", "--count", "2")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3  # two packets and the dropped bytes between them
    assert "FSS" in lines[0] and "FSS_HK" in lines[0] and "FSS_MODE=SCIENCE" in lines[0]
    assert lines[0].startswith(D.epoch.iso(T0)[:10])
    assert lines[1] == "-- dropped 2 bytes (no_sync)"
    assert "FSS_TEMP_VBB=70degC!!" in lines[2] and "[FSS_TEMP_VBB ALARM]" in lines[2]


def test_cli_monitor_json_duration(capsys, fake_link):
    fake_link["inject"] = hk_frame(seq=1) + hk_frame(seq=2)
    code, out, _ = run(capsys, "monitor", "--json", "--duration", "2")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["seq_count"] for o in objs] == [1, 2] and objs[0]["name"] == "FSS_HK"
    assert fake_link["clock"].now() >= T0 + 2.0


def test_cli_monitor_warns_when_the_link_is_down(capsys, fake_link):
    fake_link["connected"] = False
    code, out, err = run(capsys, "monitor", "--duration", "0.5")
    assert code == 0 and out == "" and "waiting for the link" in err


# -- CLI: decode ----------------------------------------------------------------------------------------------

def capture():
    frames = [hk_frame(seq=i, t=T0 + i) for i in range(3)]
    evt = D.event("LANDER", "TC_REJECTED")
    edata = D.encode_event(evt, {"REJ_APID": 0x22, "REJ_SERVICE": 8, "REJ_SUBSERVICE": 1, "REJ_CODE": "BUSY"})
    frames.append(frame(PusTm(D.lander.apid, 5, evt.subservice, edata, time=T0 + 4).pack()))
    return frames


def test_cli_decode_framed_and_raw(capsys, tmp_path):
    frames = capture()
    framed = tmp_path / "rx.bin"
    framed.write_bytes(b"".join(frames) + frames[0][:9])
    code, out, _ = run(capsys, "decode", str(framed))
    assert code == 0
    lines = out.splitlines()
    assert sum("FSS_HK" in ln for ln in lines) == 3
    assert any("EVENT LOW TC_REJECTED" in ln and "REJ_CODE=BUSY" in ln for ln in lines)
    assert any(ln.startswith("-- dropped 9 bytes (truncated)") for ln in lines)
    assert "framed capture: 4 packets decoded, 0 errors, 9 bytes dropped" in lines[-1]

    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"".join(f[4:] for f in frames) + frames[1][4:20])
    code, out, _ = run(capsys, "decode", str(raw), "--json")
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o.get("name") for o in objs[:3]] == ["FSS_HK"] * 3 and objs[3]["event"] == "TC_REJECTED"
    assert objs[-1]["error"] == "truncated" and objs[-1]["offset"] == sum(len(f) - 4 for f in frames)


def test_cli_decode_forced_format(capsys, tmp_path):
    path = tmp_path / "raw.bin"
    path.write_bytes(b"".join(f[4:] for f in capture()))
    code, out, _ = run(capsys, "decode", str(path), "--format", "framed")
    assert code == 0 and "0 packets decoded" in out.splitlines()[-1]


@pytest.mark.parametrize("make", [lambda p: p / "missing.bin", lambda p: p])
def test_cli_decode_unreadable_file_exit_2(capsys, tmp_path, make):
    code, out, err = run(capsys, "decode", str(make(tmp_path)))
    assert code == 2 and out == ""
    assert_one_line_error(err, "cannot read")


# -- CLI: dictionary, help, global behaviour -----------------------------------------------------------------

def test_cli_dictionary_list(capsys):
    code, out, _ = run(capsys, "dictionary", "list")
    assert code == 0
    for name in D.command_names:
        assert name in out
    for s in D.systems:
        for p in s.telemetry:
            assert p.name in out
        for e in s.events:
            assert e.name in out
    code, out, _ = run(capsys, "dictionary", "list", "--kind", "events", "--system", "fss")
    assert code == 0 and "FSS_MODE_CHANGED" in out and "BOOT" not in out and "COMMANDS" not in out


def test_cli_dictionary_show(capsys):
    code, out, _ = run(capsys, "dictionary", "show", "fss_level")
    arg = D.command("FSS_LEVEL").arg("target_urad")
    assert code == 0 and "command FSS_LEVEL" in out and "target_urad" in out and f"{arg.min:g}..{arg.max:g}" in out
    code, out, _ = run(capsys, "dictionary", "show", "FSS_HK")
    assert code == 0 and "FSS_TEMP_VBB" in out and "alarm outside" in out
    code, out, _ = run(capsys, "dictionary", "show", "PING")
    assert code == 0 and out.count("command PING") == 1 and "every unit" in out
    code, out, _ = run(capsys, "dictionary", "show", "TC_REJECTED")
    assert code == 0 and "event TC_REJECTED" in out and "REJ_CODE" in out


def test_cli_dictionary_show_unknown_exit_2(capsys):
    code, out, err = run(capsys, "dictionary", "show", "FSS_HKK")
    assert code == 2 and out == ""
    assert_one_line_error(err, "FSS_HK")


def test_cli_bad_dictionary_path_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "--dictionary", str(tmp_path / "nope"), "dictionary", "list")
    assert code == 2
    assert_one_line_error(err, "mission dictionary")


def test_cli_other_dictionary(capsys, tmp_path):
    code, out, _ = run(capsys, "--dictionary", str(write_mission(tmp_path)), "dictionary", "list")
    assert code == 0 and "PAY_CUT_CABLE" in out and "HAZARDOUS" in out and "FSS_SET_MODE" not in out


@pytest.mark.parametrize("argv", [[], ["send", "--help"], ["monitor", "--help"], ["decode", "--help"],
                                  ["dictionary", "--help"], ["dictionary", "list", "--help"],
                                  ["dictionary", "show", "--help"], ["--help"]])
def test_cli_help(capsys, argv):
    code = cli.main(argv)
    cap = capsys.readouterr()
    if not argv:
        assert code == 2 and "usage: ground" in cap.err
        return
    assert code == 0 and "usage: ground" in cap.out
    # every option has help text
    parser = cli.build_parser()
    for action in _all_actions(parser):
        assert action.help, action


def _all_actions(parser):
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)
        else:
            yield action


def test_cli_unknown_subcommand_and_dictionary_without_action(capsys):
    assert cli.main(["fly"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["dictionary"]) == 2


def test_cli_unexpected_errors_are_one_line(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(cli, "cmd_dictionary_list", boom)  # main() builds its parser after this
    code, _, err = run(capsys, "dictionary", "list")
    assert code == 1
    assert_one_line_error(err, "RuntimeError", "disk on fire")


def test_console_script_and_python_m():
    eps = [e for e in entry_points(group="console_scripts") if e.name == "ground"]
    assert eps and eps[0].value == "ground.cli:main"
    assert eps[0].load() is cli.main
    proc = subprocess.run([sys.executable, "-m", "ground", "dictionary", "show", "PING"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "command PING" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "ground", "send", "NOPE"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("ground: unknown command")
