"""The operator console's pure models (ground/console_model.py): no Textual, no I/O, values in, rows out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.dictionary import load_dictionary
from fsw.protocol import PusTc, PusTm
from ground.console_model import (
    CommandLog, Completer, EventLog, History, LinkMonitor, SyntheticTelemetry, TabCycler, TelemetryModel, clean,
    confirm_target, escape_markup, fmt_value, grid_views, instance_param, packet_grid, parse_line, unit_enum,
    validate,
)
from ground.decoding import PacketDecoder
from ground.verification import VerificationTracker
from tests.conftest import examples

ROOT = Path(__file__).resolve().parents[2]
D = load_dictionary()
T0 = D.launch_time


@pytest.fixture(scope="module")
def completer() -> Completer:
    return Completer(D)


# -- purity -------------------------------------------------------------------------------------------------

def test_console_model_is_pure() -> None:
    tree = ast.parse((ROOT / "ground/console_model.py").read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("print", "open", "input")
    forbidden = {"textual", "rich", "time", "os", "threading", "serial", "socket", "random", "asyncio", "sqlite3"}
    assert not [n for n in names if n.split(".")[0] in forbidden], names


# -- the command line ---------------------------------------------------------------------------------------

def test_parse_line_splits_name_options_and_arguments() -> None:
    p = parse_line("  PING --to FSS --timeout=3 ")
    assert (p.name, p.to, p.timeout, p.args, p.errors) == ("PING", "FSS", "3", {}, [])
    p = parse_line("FSS_SET_MODE mode=SCIENCE")
    assert p.args == {"mode": "SCIENCE"} and not p.errors
    assert parse_line("X a").errors == ["argument 'a' must be written name=value"]
    assert parse_line("X =1").errors == ["argument '=1' has no name before '='"]
    assert parse_line("X a=1 a=2").errors == ["argument a given twice"]
    assert parse_line("X --to").errors == ["--to needs a value"]
    assert parse_line("X --bogus").errors[0].startswith("unknown option --bogus")
    assert parse_line("").name == ""


def test_tab_completes_command_names_to_the_common_prefix_then_whole(completer: Completer) -> None:
    c = completer.complete("PAYLOAD_PO")
    assert c.text == "PAYLOAD_POWER_O" and set(c.candidates) == {"PAYLOAD_POWER_ON", "PAYLOAD_POWER_OFF"}
    c = completer.complete("payload_power_on")  # any case; a finished word gets a space
    assert c.text == "PAYLOAD_POWER_ON " and c.cursor == len(c.text)
    # no prefix match: words containing what was typed
    assert set(completer.complete("SET_MODE").candidates) >= {"FSS_SET_MODE", "LMS_SET_MODE"}
    assert completer.complete("ZZZZQ").candidates == ()


def test_tab_completes_argument_names_and_enumeration_values(completer: Completer) -> None:
    assert completer.complete("PAYLOAD_POWER_ON ").text == "PAYLOAD_POWER_ON unit="
    c = completer.complete("PAYLOAD_POWER_ON unit=")
    assert c.text == "PAYLOAD_POWER_ON unit=" and c.candidates == tuple(
        f"unit={u}" for u in D.lander.enums["PAYLOAD"].values)
    assert completer.complete("FSS_SET_MODE mode=sci").text == "FSS_SET_MODE mode=SCIENCE "
    # an argument already given is not offered again
    assert completer.candidates("PDU_SWITCH channel=FSS ")[2] == ["state="]
    # a completion in the middle of the line keeps what follows
    text = "FSS_SET_MODE mode=SCI --timeout 5"
    c = completer.complete(text, len("FSS_SET_MODE mode=SCI"))
    assert c.text == "FSS_SET_MODE mode=SCIENCE --timeout 5"


def test_tab_completes_units_after_to(completer: Completer) -> None:
    c = completer.complete("PING --to ")
    assert set(c.candidates) == {s.name for s in D.systems}
    assert completer.complete("PING --to F").text == "PING --to FSS "
    assert completer.complete("PING --to=LM").text == "PING --to=LMS "
    assert completer.complete("PING --ti").text == "PING --timeout "


def test_repeated_tab_cycles_and_an_edit_starts_over(completer: Completer) -> None:
    cyc = TabCycler(completer)
    line = "FSS_SET_MODE mode="
    first = cyc.tab(line, len(line))
    assert first.text == line and len(first.candidates) == 5 and first.chosen == -1
    seen = []
    text, cur = first.text, first.cursor
    for _ in range(6):
        c = cyc.tab(text, cur)
        text, cur = c.text, c.cursor
        seen.append(text)
    modes = list(D.system("FSS").enums["FSS_MODE"].values)
    assert seen[:5] == [f"FSS_SET_MODE mode={m} " for m in modes]
    assert seen[5] == seen[0]  # round again
    # an edit: the next Tab completes what is there now
    assert cyc.tab("FSS_SET_GA", 10).text == "FSS_SET_GAIN "


def test_inline_suggestion(completer: Completer) -> None:
    assert completer.suggest("FSS_SET_M") == "FSS_SET_MODE"
    assert completer.suggest("FSS_SET_MODE mode=SC") == "FSS_SET_MODE mode=SCIENCE"
    assert completer.suggest("FSS_SET_MODE ") is None
    assert completer.suggest("") is None


def test_argument_hints_show_the_signature_and_the_current_argument(completer: Completer) -> None:
    h = completer.hint("FSS_LEVEL target_urad=")
    sig = h.lines[0]
    assert "".join(t for t, _ in sig).startswith("FSS_LEVEL → FSS target_urad=<i16 urad -2000..2000>")
    assert ("target_urad", "key") not in sig
    assert any(tok == "key" and "target_urad" in text for text, tok in sig)  # the argument being typed
    assert "modes: CHECKOUT, SCIENCE" in h.plain
    h = completer.hint("DEPLOY_FIRE ")
    assert ("   HAZARDOUS", "hazard") in h.lines[0]
    assert "unit=<ALPINE|LUPINE>" in h.plain and "arguments left: unit" in h.plain
    assert "[duration_s=<u16 s 1..600>]" in completer.hint("FSS_CALIBRATE ").plain  # optional: has a default
    assert "no command matches 'NOPE'" in completer.hint("NOPE").plain
    assert "Tab completes" in completer.hint("").plain


@pytest.mark.parametrize("line, level, message", [
    ("", "empty", ""),
    ("FSS_SET_MODE", "incomplete", "FSS_SET_MODE: argument mode is required"),
    ("FSS_SET_MODE mode=science", "ok", "ready: Enter sends"),
    ("FSS_SET_MODE mode=WARP", "error", "FSS_SET_MODE: mode='WARP' is not one of OFF, SURVIVAL, CHECKOUT, SCIENCE, "
                                        "HANDOVER"),
    ("FSS_SET_MODE mode=OFF speed=2", "error", "FSS_SET_MODE: unknown argument(s) speed; expected mode"),
    ("FSS_LEVEL target_urad=5000", "error", "FSS_LEVEL: target_urad=5000 outside -2000.0..2000.0"),
    ("FSS_LEVEL target_urad=abc", "error", "FSS_LEVEL: target_urad takes an integer, not 'abc'"),
    ("FSS_SET_MOD mode=OFF", "error", "unknown command 'FSS_SET_MOD'; did you mean FSS_SET_MODE"),
    ("PING --to MARS", "error", "unknown unit 'MARS'"),
    ("FSS_SET_MODE mode=OFF --timeout 0", "error", "--timeout takes a positive number of seconds, not '0'"),
    ("FSS_SET_MODE mode", "error", "argument 'mode' must be written name=value"),
    ("SCHED_INSERT", "error", "SCHED_INSERT carries variable-length data built by other tools"),
    ("DEPLOY_FIRE unit=lupine", "ok", "HAZARDOUS: Enter asks you to type LUPINE to confirm"),
])
def test_validation_messages(line: str, level: str, message: str) -> None:
    v = validate(D, line)
    assert v.level == level
    assert v.message.startswith(message), v.message


def test_a_valid_line_carries_what_to_send() -> None:
    v = validate(D, "ping --to lms --timeout 2.5")
    assert v.ok and v.command.name == "PING" and v.system == "LMS" and v.timeout == 2.5 and not v.hazardous
    v = validate(D, "DEPLOY_ARM unit=alpine")
    assert v.ok and v.hazardous and v.system == "LANDER" and v.target == "ALPINE"
    assert dict(v.args) == {"unit": "ALPINE"} and v.summary() == "DEPLOY_ARM unit=ALPINE → LANDER"


def test_confirmation_names_the_unit_acted_on() -> None:
    assert confirm_target(D, D.command("DEPLOY_FIRE"), {"unit": "LUPINE"}) == "LUPINE"
    assert confirm_target(D, D.command("DEPLOY_OVERRIDE"), {"unit": 1, "state": "STOWED"}) == "ALPINE"
    assert confirm_target(D, D.command("PAYLOAD_POWER_ON"), {"unit": "FSS"}) == "FSS"
    # no argument naming a unit: the unit the command is addressed to
    assert confirm_target(D, D.command("SET_PHASE"), {"phase": "DEPLOY"}) == "LANDER"
    assert confirm_target(D, D.command("FSS_SET_MODE"), {"mode": "OFF"}) == "FSS"


def test_history_browses_back_and_forward_keeping_the_draft() -> None:
    h = History(limit=3)
    for line in ["A", "B", "B", " C ", "D"]:
        h.add(line)
    assert h.entries == ["B", "C", "D"]  # consecutive duplicates folded, bounded, stripped
    assert h.back("draft") == "D"
    assert h.back("D") == "C"
    assert h.back("C") == "B"
    assert h.back("B") == "B"  # stays at the oldest
    assert h.forward("B") == "C"
    assert h.forward("C") == "D"
    assert h.forward("D") == "draft"
    assert h.forward("draft") == "draft"
    assert History().back("x") == "x"


# -- text from the link -------------------------------------------------------------------------------------

def test_markup_in_link_text_is_escaped() -> None:
    rich_text = pytest.importorskip("rich.text")
    for s in ["[bold red]x", "[/]", "\\[b]x", "a\\", "[link=http://evil]click[/link]", "[$accent]y",
              "[@click=quit]", "\\\\[/bold]"]:
        esc = escape_markup(s)
        assert rich_text.Text.from_markup(f"[bold]{esc}[/bold]", emoji=False).plain == s
    assert escape_markup("no brackets") == "no brackets"


@settings(max_examples=examples(300))
@given(st.text(alphabet=st.sampled_from(list("[]\\/ab=@$#:,. ")), max_size=30))
def test_escaped_markup_renders_literally_inside_tags(s: str) -> None:
    rich_text = pytest.importorskip("rich.text")
    t = rich_text.Text.from_markup(f"<[italic]{escape_markup(s)}[/italic]>", emoji=False)
    assert t.plain == f"<{s}>"


def test_clean_makes_control_characters_visible_and_bounds_length() -> None:
    assert clean("\x1b[2Jwiped\x07") == "\\x1b[2Jwiped\\x07"
    assert clean("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert clean("\u202eevil") == "\\u202eevil"  # bidi override
    assert clean("x" * 500, 10) == "x" * 9 + "…"
    assert clean(42) == "42" and clean("plain [text]") == "plain [text]"


def test_value_formatting() -> None:
    prm = D.packet("LANDER_HK").param("ONBOARD_TIME")
    assert fmt_value(None) == "—" and fmt_value(True) == "true" and fmt_value(0.0) == "0"
    assert fmt_value(28.0123456) == "28.0123" and fmt_value(7) == "7"
    assert fmt_value(list(range(100))) == "[0,1,2,3,…](100)" and fmt_value([1.5]) == "[1.5](1)"
    assert fmt_value(T0 + 5.25, prm, D.epoch.iso) == "2027-03-01 00:00:05"
    assert fmt_value("[bold]\x1b") == "[bold]\\x1b"


# -- telemetry ---------------------------------------------------------------------------------------------

def _tm_record(packet: str, values: dict, t: float, dec: PacketDecoder = PacketDecoder(D)) -> dict:
    pkt = D.packet(packet)
    apid = pkt.apid if pkt.apid is not None else D.lander.apid
    coarse = int(t)
    tm = PusTm(apid, pkt.service, pkt.subservice, D.encode_tm(pkt, values), time_coarse=coarse,
               time_fine=int((t - coarse) * 65536))
    return dec.decode(tm.pack(), rx_time=t)


def _fss_hk(t: float, **over: object) -> dict:
    values = {"FSS_MODE": "SCIENCE", "FSS_VBB_GAIN": "MID", "FSS_TEMP_VBB": 18.0, "FSS_TEMP_EBOX": 22.0,
              "FSS_BATT_V": 29.4, "FSS_BATT_SOC": 96, "FSS_TILT": 120, "FSS_SAMPLES": 10, "FSS_TIME_ERR": 0,
              "FSS_CAL_ACTIVE": False, "FSS_TX_DROPS": 0}
    values.update(over)
    return _tm_record("FSS_HK", values, t)


def _link_hk(port: str, t: float, rx_bytes: int = 0) -> dict:
    pkt = D.packet("LINK_HK")
    values = {p.name: 0 for p in pkt.params}
    values.update({"LINK_PORT": port, "LINK_UP": True, "LINK_RX_BYTES": rx_bytes})
    return _tm_record("LINK_HK", values, t)


def test_telemetry_rows_hold_engineering_values_with_units_and_limit_states() -> None:
    m = TelemetryModel(D)
    assert m.ingest(_fss_hk(T0, FSS_TEMP_VBB=50.0, FSS_BATT_V=21.0), T0) == 11
    row = m.get("FSS_HK", None, "FSS_TEMP_VBB")
    assert (m.text(row), row.unit, row.limit, m.token(row, T0)) == ("50", "degC", "warn", "warn")
    row = m.get("FSS_HK", None, "FSS_BATT_V")
    assert (m.text(row), row.unit, m.token(row, T0)) == ("21", "V", "alarm")
    assert m.token(m.get("FSS_HK", None, "FSS_TEMP_EBOX"), T0) == "nominal"   # has limits, inside them
    assert m.token(m.get("FSS_HK", None, "FSS_SAMPLES"), T0) == "plain"       # has none
    assert m.text(m.get("FSS_HK", None, "FSS_MODE")) == "SCIENCE"
    assert m.time_text(row) == "00:00:00.000"
    assert [r.param for r in m.out_of_limits()] == ["FSS_TEMP_VBB", "FSS_BATT_V"]


def test_only_changed_rows_are_dirty() -> None:
    m = TelemetryModel(D)
    m.ingest(_fss_hk(T0), T0)
    assert len(m.take_dirty()) == 11
    assert m.ingest(_fss_hk(T0 + 1), T0 + 1) == 0 and m.take_dirty() == set()
    assert m.ingest(_fss_hk(T0 + 2, FSS_TILT=130), T0 + 2) == 1
    assert [r.param for r in m.take_dirty()] == ["FSS_TILT"]
    assert m.ingested == 33 and m.changed == 12


def test_rows_go_stale_after_three_periods() -> None:
    m = TelemetryModel(D)
    m.ingest(_fss_hk(T0), T0)
    row = m.get("FSS_HK", None, "FSS_TILT")
    period = D.system("FSS").hk_period_s
    assert m.token(row, T0 + 3 * period) == "nominal"
    assert m.token(row, T0 + 3 * period + 0.01) == "stale"


def test_one_per_unit_packets_keep_a_row_set_per_unit() -> None:
    assert instance_param(D, D.packet("LINK_HK")).name == "LINK_PORT"
    assert instance_param(D, D.packet("PAYLOAD_HK")).name == "PL_UNIT"
    assert instance_param(D, D.packet("DEPLOY_HK")).name == "DEP_UNIT"
    assert instance_param(D, D.packet("FSS_HK")) is None  # FSS_MODE labels are no unit names
    m = TelemetryModel(D)
    m.ingest(_link_hk("FSS", T0, rx_bytes=100), T0)
    m.ingest(_link_hk("GROUND", T0, rx_bytes=7), T0)
    a, b = m.get("LINK_HK", "FSS", "LINK_RX_BYTES"), m.get("LINK_HK", "GROUND", "LINK_RX_BYTES")
    assert (a.value, b.value, a.label, b.label) == (100, 7, "LINK_HK[FSS]", "LINK_HK[GROUND]")
    assert m.get("LINK_HK", "FSS", "LINK_PORT") is None  # the key is the label, not a row
    # sorted in the PORT enumeration's order, whatever the arrival order
    labels = [r.label for r in m.visible]
    assert labels.index("LINK_HK[GROUND]") < labels.index("LINK_HK[FSS]")


def test_payload_mode_is_shown_with_the_units_own_mode_labels() -> None:
    prm = D.packet("PAYLOAD_HK").param("PL_MODE")
    assert unit_enum(D, prm, "FSS").name == "FSS_MODE"
    assert unit_enum(D, prm, "GROUND") is None
    pkt = D.packet("PAYLOAD_HK")
    values = {p.name: 0 for p in pkt.params}
    values.update({"PL_UNIT": "FSS", "PL_STATE": "OPERATING", "PL_MODE": 3, "PL_HEATER": False})
    m = TelemetryModel(D)
    m.ingest(_tm_record("PAYLOAD_HK", values, T0), T0)
    assert m.text(m.get("PAYLOAD_HK", "FSS", "PL_MODE")) == "SCIENCE"


def test_filter_by_words_and_by_limit_state() -> None:
    m = TelemetryModel(D)
    m.ingest(_fss_hk(T0, FSS_TEMP_VBB=50.0), T0)
    m.ingest(_link_hk("FSS", T0), T0)
    total = len(m.visible)
    s0 = m.structure
    m.set_filter("fss temp")
    assert [r.param for r in m.visible] == ["FSS_TEMP_VBB", "FSS_TEMP_EBOX"] and m.structure > s0
    m.set_filter("!")
    assert [r.param for r in m.visible] == ["FSS_TEMP_VBB"]
    m.ingest(_fss_hk(T0 + 1), T0 + 1)  # back inside its limits
    assert m.refilter() and m.visible == []
    m.set_filter("")
    assert len(m.visible) == total


def test_records_other_than_telemetry_leave_the_table_alone() -> None:
    m = TelemetryModel(D)
    ev = D.event("LANDER", "BOOT")
    tm = PusTm(D.lander.apid, 5, ev.subservice, D.encode_event(ev, {"BOOT_RESTARTS": 1}))
    for rec in [PacketDecoder(D).decode(tm.pack()), {"dropped": "no_sync", "bytes": 3},
                {"error": "crc", "params": {"X": 1}, "packet_type": "TM"}, {"link_event": "connected"},
                PacketDecoder(D).decode(PusTc(0x20, 17, 1, b"").pack())]:
        assert m.ingest(rec, T0) == 0
    assert len(m) == 0


def test_unknown_packets_and_hostile_strings_are_kept_as_data() -> None:
    m = TelemetryModel(D)
    rec = {"packet_type": "TM", "name": "[bold red]x", "system": "[/]", "time": T0,
           "params": {"[b]p": "[bold red]x", "ctl": "\x1b[31mred"}, "limits": {}}
    assert m.ingest(rec, T0) == 2
    rows = {r.param: r for r in m.visible}
    assert m.text(rows["[b]p"]) == "[bold red]x" and rows["[b]p"].label == "[bold red]x"
    assert m.text(rows["ctl"]) == "\\x1b[31mred"


# -- status grids ----------------------------------------------------------------------------------------

def test_status_grids_come_from_the_dictionary() -> None:
    views = grid_views(D)
    pl = views["payloads"][0]
    assert pl.columns == tuple(D.lander.enums["PAYLOAD"].values)
    labels = [r.label for r in pl.rows]
    assert labels[:3] == ["PL_STATE", "PL_MODE", "PL_HEATER"] and "PL_UNIT" not in labels
    assert {"PDU main ON", "PDU main I", "PDU heater ON"} <= set(labels)
    assert views["payloads"][1].columns == ("value",)  # POWER_HK: one value per parameter
    assert views["deploy"][0].columns == ("ALPINE", "LUPINE")
    assert views["link"][0].columns == tuple(D.enums["PORT"].values)
    assert packet_grid(D, "NO_SUCH_PACKET", "x", "x") is None


def test_grid_cells_relabel_modes_and_compute_rates() -> None:
    m = TelemetryModel(D)
    pkt = D.packet("PAYLOAD_HK")
    values = {p.name: 0 for p in pkt.params}
    values.update({"PL_UNIT": "LMS", "PL_STATE": "IDLE", "PL_MODE": 1, "PL_POWER": 4.5})
    m.ingest(_tm_record("PAYLOAD_HK", values, T0), T0)
    pl = grid_views(D)["payloads"][0]
    table = pl.table(m, T0)
    r = {row.label: i for i, row in enumerate(pl.rows)}
    c = pl.columns.index("LMS")
    lms_mode = list(D.system("LMS").enums["LMS_MODE"].values)[1]
    assert table[r["PL_STATE"]][c] == ("IDLE", "plain")
    assert table[r["PL_MODE"]][c] == (lms_mode, "plain")
    assert table[r["PL_POWER"]][c] == ("4.5", "plain")
    assert table[r["PL_STATE"]][pl.columns.index("FSS")] == ("—", "dim")  # nothing heard yet
    link = grid_views(D)["link"][0]
    m.ingest(_link_hk("FSS", T0, rx_bytes=1000), T0)
    rate_row = [row.label for row in link.rows].index("LINK_RX_BYTES/s")
    assert link.cell(m, rate_row, link.columns.index("FSS"), T0)[0] == "—"  # one sample: no rate yet
    m.ingest(_link_hk("FSS", T0 + 2, rx_bytes=4000), T0 + 2)
    assert link.cell(m, rate_row, link.columns.index("FSS"), T0 + 2) == ("1.5k", "plain")


# -- events -------------------------------------------------------------------------------------------------

def _event(system: str, name: str, t: float, **args: object) -> dict:
    ev = D.event(system, name)
    coarse = int(t)
    tm = PusTm(ev.apid, 5, ev.subservice, D.encode_event(ev, args), time_coarse=coarse)
    return PacketDecoder(D).decode(tm.pack())


def test_events_are_coloured_by_severity() -> None:
    log = EventLog(D)
    log.ingest(_event("LANDER", "BOOT", T0, BOOT_RESTARTS=2), T0)
    log.ingest(_event("PDU", "PDU_TRIP", T0 + 1, PDU_TRIP_CH="FSS", PDU_TRIP_I=1.2, PDU_TRIP_LIMIT=1.0), T0 + 1)
    log.ingest(_event("LANDER", "LINK_DOWN", T0 + 2, EVT_PORT="FSS"), T0 + 2)
    new, skipped = log.take_new()
    assert skipped == 0
    assert [(e.name, e.kind, e.token, e.source) for e in new] == [
        ("BOOT", "INFO", "INFO", "LANDER"), ("PDU_TRIP", "HIGH", "HIGH", "PDU"),
        ("LINK_DOWN", "MEDIUM", "MEDIUM", "LANDER")]
    assert new[1].text == "PDU_TRIP_CH=FSS PDU_TRIP_I=1.2 PDU_TRIP_LIMIT=1"
    assert new[0].time == "00:00:00.000"
    assert log.counts["HIGH"] == 1 and log.take_new() == ([], 0)


def test_dropped_bytes_are_summed_per_flush_and_errors_and_notes_are_listed() -> None:
    log = EventLog(D)
    for _ in range(50):
        log.ingest({"dropped": "no_sync", "bytes": 3}, T0)
    log.ingest({"dropped": "crc", "bytes": 20}, T0)
    log.ingest({"error": "crc", "detail": "[blink]bad[/blink]", "apid": 0x20, "system": "FSS"}, T0)
    log.ingest({"link_event": "disconnected peer closed"}, T0)
    log.note("sent PING", T0)
    log.flush(T0)
    new, _ = log.take_new()
    assert [(e.kind, e.token) for e in new] == [("error", "error"), ("link", "link"), ("note", "note"),
                                                ("dropped", "dropped")]
    assert new[0].text == "apid 0x020: [blink]bad[/blink]"
    assert new[3].name == "170 bytes" and new[3].text == "in 51 stretches (no_sync ×50, crc ×1)"
    log.flush(T0)
    assert log.take_new() == ([], 0)


def test_a_flood_of_events_is_capped_per_refresh() -> None:
    log = EventLog(D)
    log.max_new = 10
    for i in range(25):
        log.note(f"n{i}", T0)
    new, skipped = log.take_new()
    assert (len(new), skipped, new[-1].text) == (10, 15, "n24")
    assert len(log.entries) == 25


# -- commands -----------------------------------------------------------------------------------------------

def _report(tc: PusTc, sub: int, t: float, code: str | None = None) -> dict:
    names = {1: "ACCEPT_OK", 2: "ACCEPT_FAIL", 3: "START_OK", 5: "PROGRESS_OK", 7: "COMPLETE_OK"}
    pkt = D.packet(names[sub])
    values = {"TC_PACKET_ID": tc.apid | 0x1800, "TC_SEQ_CTRL": tc.seq_count | 0xC000}
    if code is not None:
        values.update({"FAILURE_CODE": code, "FAILURE_DATA": 0})
    if sub == 5:
        values["STEP"] = 1
    tm = PusTm(D.lander.apid, 1, sub, D.encode_tm(pkt, values), time_coarse=int(t))
    return PacketDecoder(D).decode(tm.pack())


def test_command_rows_show_each_stage_as_it_arrives() -> None:
    tr = VerificationTracker(D)
    log = CommandLog(D)
    tc = PusTc(0x10, 8, 1, b"\x00\x20\x01", seq_count=5)
    e = log.add("PAYLOAD_POWER_ON unit=FSS", "PAYLOAD_POWER_ON", "LANDER", T0, tc)
    assert log.cells(e)[2:] == [("·", "dim")] * 4 + [("SENDING", "pending")]
    assert log.update(e, tr.add_tc(tc, T0, 30.0))
    assert not log.update(e, tr.status(tc))  # same snapshot: nothing to redraw
    assert [c for c, _ in log.cells(e)[2:]] == ["…", "…", "…", "…", "PENDING"]
    for sub, dt in ((1, 0.01), (3, 0.02), (5, 1.0), (5, 2.0), (7, 5.0)):
        tr.add_record(_report(tc, sub, T0 + dt), T0 + dt)
        log.update(e, tr.status(tc))
    assert log.cells(e) == [("1", "dim"), ("PAYLOAD_POWER_ON unit=FSS", "plain"), ("✓", "good"), ("✓", "good"),
                            ("✓2", "good"), ("✓", "good"), ("SUCCESS 5.00s", "good")]
    assert log.pending() == [] and e.done


def test_command_rows_show_failure_timeout_and_not_sent() -> None:
    tr = VerificationTracker(D)
    log = CommandLog(D, limit=2)
    tc = PusTc(0x10, 8, 1, b"\x00\x10\x01", seq_count=1)
    e = log.add("DEPLOY_ARM unit=ALPINE", "DEPLOY_ARM", "LANDER", T0, tc)
    tr.add_tc(tc, T0, 15.0)
    tr.add_record(_report(tc, 2, T0 + 0.1, "PHASE_FORBIDS"), T0 + 0.1)
    log.update(e, tr.status(tc))
    assert log.cells(e)[2:] == [("✗", "bad"), ("–", "dim"), ("–", "dim"), ("–", "dim"),
                                ("FAILED PHASE_FORBIDS at acc", "bad")]
    tc2 = PusTc(0x20, 17, 1, b"", seq_count=2)
    e2 = log.add("PING --to FSS", "PING", "FSS", T0, tc2)
    tr.add_tc(tc2, T0, 5.0)
    tr.expire(T0 + 5.0)
    log.update(e2, tr.status(tc2))
    assert log.cells(e2)[-1] == ("TIMEOUT 5s", "timeout")
    e3 = log.add("PING", "PING", "LANDER", T0, error="link run/ground.pty is not connected")
    assert log.cells(e3)[-1] == ("NOT SENT: link run/ground.pty is not connected", "bad") and e3.done
    assert [x.id for x in log.entries] == [2, 3] and log.take_dropped() == [1]  # bounded


# -- the ground link ----------------------------------------------------------------------------------------

def test_link_monitor_contact_rates_and_drops() -> None:
    lm = LinkMonitor(D)
    lm.update({"connected": False}, T0)
    assert lm.contact(T0) == ("LINK DOWN", "alarm")
    lm.update({"connected": True, "rx_packets": 0, "rx_bytes": 0, "last_rx": None}, T0)
    assert lm.contact(T0) == ("WAITING", "warn")
    lm.update({"connected": True, "rx_packets": 20, "rx_bytes": 2000, "last_rx": T0 + 2, "dropped_bytes": 5},
              T0 + 2)
    assert lm.rates() == (10.0, 1000.0)
    assert lm.contact(T0 + 2) == ("CONTACT", "good")
    timeout = lm.contact_timeout
    assert timeout == 3 * D.lander.hk_period_s
    assert lm.contact(T0 + 2 + timeout + 1)[1] == "alarm"
    lm.update(lm.stats, T0 + 3, phase="CRUISE")  # a slow heartbeat in cruise: a longer timeout
    assert lm.contact_timeout == 3 * D.lander.hk_period_s * D.phases["CRUISE"].hk_factor
    assert lm.summary(T0 + 3)[-1] == (" drop 5 B · err 0 ", "warn")


# -- synthetic load -----------------------------------------------------------------------------------------

def test_synthetic_telemetry_updates_every_parameter_each_cycle() -> None:
    gen = SyntheticTelemetry(120, 10.0, per_packet=50, start=100.0)
    recs = gen.records_until(100.25)  # cycles at 100.0, 100.1, 100.2
    assert len(recs) == 9 and [r["name"] for r in recs[:3]] == ["SYN_HK_000", "SYN_HK_001", "SYN_HK_002"]
    assert sum(len(r["params"]) for r in recs[:3]) == 120
    assert recs[0]["params"] != recs[3]["params"]  # every value moves
    for r in recs:
        for k, v in r["params"].items():
            assert SyntheticTelemetry.limit(v) == r["limits"].get(k) or abs(v - round(v)) < 1e-3
    m = TelemetryModel(D)
    for r in recs:
        m.ingest(r, r["time"])
    assert len(m) == 120
    flagged = sum(1 for r in recs[-3:] for _ in r["limits"])
    assert flagged == len(m.out_of_limits())
    assert gen.records_until(100.25) == []
    gen.records_until(110.0)  # ten seconds late: the backlog is skipped, not replayed
    assert gen.skipped_cycles > 80
    with pytest.raises(ValueError):
        SyntheticTelemetry(0, 10)
