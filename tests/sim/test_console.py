"""``ground console`` driven headless by Textual's test pilot, over the whole bench on the simulated clock.

The simulated backend's wall clock is a fake the tests move by hand, and the
console's own timers are off: ``app.pump()`` polls and redraws, so every step
is deterministic.  Screenshots (SVG) go to a temporary directory; set
``CONSOLE_SCREENSHOT_DIR=docs/img`` to refresh the ones in the docs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

pytest.importorskip("textual")

from rich.segment import Segment  # noqa: E402
from textual.widgets import Input, RichLog, Static, TabbedContent  # noqa: E402

from fsw.dictionary import load_dictionary  # noqa: E402
from fsw.protocol import PusTm, frame  # noqa: E402
from fsw.protocol.pus import PusTc  # noqa: E402
from ground.console import LiveBackend, SimBackend, SyntheticBackend, add_console_parser, make_backend  # noqa: E402
from ground.console_app import (  # noqa: E402
    STYLES, CommandPane, ConfirmScreen, ConsoleApp, GridTable, HelpScreen, ParamTable,
)
from ground.session import GroundSession  # noqa: E402

D = load_dictionary()
SIZE = (160, 48)


class FakeWall:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Harness:
    def __init__(self, app: ConsoleApp, pilot: Any, wall: FakeWall, shots: Path) -> None:
        self.app = app
        self.pilot = pilot
        self.wall = wall
        self.shots = shots

    async def run(self, seconds: float, step: float = 0.5) -> None:
        """Let ``seconds`` of simulated time pass, polling and redrawing every ``step``."""
        n = max(1, round(seconds / step))
        for _ in range(n):
            self.wall.t += step
            self.app.pump()
        await self.pilot.pause()

    async def type(self, text: str, keys: bool = False) -> None:
        """Type into the focused input: key by key through the pilot, or (faster) inserted as typing does."""
        if keys:
            await self.pilot.press(*[{" ": "space", "=": "equals_sign"}.get(ch, ch) for ch in text])
        else:
            focused = self.app.focused
            assert isinstance(focused, Input), focused
            focused.insert_text_at_cursor(text)
        await self.pilot.pause()

    def shot(self, name: str, docs: bool = False) -> Path:
        """An SVG screenshot in the test's directory (and, for ``docs``, in $CONSOLE_SCREENSHOT_DIR)."""
        path = Path(self.app.save_screenshot(f"{name}.svg", str(self.shots)))
        assert path.stat().st_size > 10_000
        where = os.environ.get("CONSOLE_SCREENSHOT_DIR")
        if docs and where:
            self.app.save_screenshot(f"console-{name}.svg", where)
        return path

    @property
    def line(self) -> Input:
        return self.app._q("#cmdline", Input)

    def hint(self) -> str:
        return str(self.app._q("#hint", Static).render())

    def events_text(self) -> list[str]:
        """The event pane's entries (the model's lines)."""
        return [e.line for e in self.app.events.entries]

    def events_drawn(self) -> str:
        """What the event pane drew, wrapped lines joined back."""
        return "".join(strip.text for strip in self.app._q("#events", RichLog).lines)

    def commands(self) -> CommandPane:
        return self.app._q("#commands", CommandPane)

    def command_cells(self, row: int) -> list[str]:
        pane = self.commands()
        return [str(pane.get_cell_at((row, c))) for c in range(len(pane.columns))]

    @property
    def tc_sent(self) -> int:
        return self.app.backend.bench.ground.counts["tc_sent"]


def console(test: Callable[[Harness], Awaitable[None]], tmp_path: Path, *, phase: str = "PRELAUNCH") -> None:
    wall = FakeWall()
    backend = SimBackend(D, wall=wall, max_step=1e9, phase=phase)
    app = ConsoleApp(backend, timers=False, show_timing=False)  # screenshots the same every run

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            h = Harness(app, pilot, wall, tmp_path)
            await h.run(3.0)  # the lander settles after boot before it takes payload power
            await test(h)

    asyncio.run(main())


# -- command entry ------------------------------------------------------------------------------------------

def test_typed_command_with_completion_shows_every_verification_stage(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.type("payload_po", keys=True)
        await h.pilot.press("tab")
        assert h.line.value == "payload_power_o" or h.line.value.upper() == "PAYLOAD_POWER_O"
        assert "2 choices" in h.hint()
        await h.type("n", keys=True)
        await h.pilot.press("tab")
        assert h.line.value == "PAYLOAD_POWER_ON "
        await h.pilot.press("tab")
        assert h.line.value == "PAYLOAD_POWER_ON unit="
        await h.pilot.press("tab")  # four payloads: listed
        assert "4 choices (Tab cycles): FSS  LISTER  LMS  LUSEE" in h.hint()
        await h.pilot.press("tab")  # cycles: the first
        assert h.line.value == "PAYLOAD_POWER_ON unit=FSS "
        assert "ready: Enter sends" in h.hint()
        await h.pilot.press("enter")
        await h.pilot.pause()
        assert h.line.value == "" and h.tc_sent == 1
        assert h.command_cells(0)[1:] == ["PAYLOAD_POWER_ON unit=FSS", "…", "…", "…", "…", "PENDING"]
        await h.run(0.5)
        cells = h.command_cells(0)
        assert cells[2:4] == ["✓", "✓"] and cells[-1] == "PENDING"  # accepted and started, still booting
        await h.run(8.0)
        cells = h.command_cells(0)
        assert cells[2:6] == ["✓", "✓", "✓", "✓"] and cells[-1].startswith("SUCCESS")
        # the cells show what the ground's verification tracker holds
        entry = h.app.commands.entries[0]
        assert [r.stage for r in entry.result.reports] == ["acceptance", "start", "progress", "completion"]
        events = "\n".join(h.events_text())
        assert "sent PAYLOAD_POWER_ON unit=FSS → LANDER" in events
        assert "PAYLOAD_STATE_CHANGED PL_UNIT=FSS PL_FROM=OFF PL_TO=BOOTING" in events
        # history: ↑ brings the line back
        await h.pilot.press("up")
        assert h.line.value == "PAYLOAD_POWER_ON unit=FSS"
        await h.pilot.press("down")
        assert h.line.value == ""
        h.shot("commanding")

    console(body, tmp_path)


def test_a_bad_command_line_is_explained_and_nothing_is_sent(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.type("FSS_LEVEL target_urad=5000")
        assert "FSS_LEVEL → FSS target_urad=<i16 urad -2000..2000>" in h.hint()
        assert "✗ FSS_LEVEL: target_urad=5000 outside -2000.0..2000.0" in h.hint()
        await h.pilot.press("enter")
        await h.pilot.pause()
        assert h.line.value == "FSS_LEVEL target_urad=5000"  # kept for fixing
        assert h.tc_sent == 0 and h.app.commands.entries == []
        h.app.submit_line("FSS_SET_MODE")
        assert "argument mode is required" in h.hint() and h.tc_sent == 0
        # an unpowered payload: sent, and refused on board at acceptance
        h.app.submit_line("FSS_SET_MODE mode=SCIENCE")
        await h.run(1.0)
        cells = h.command_cells(0)
        assert cells[2] == "✗" and cells[-1] == "FAILED PAYLOAD_UNPOWERED at acc"

    console(body, tmp_path)


def test_hazardous_command_needs_the_unit_typed_out_cancel_then_confirm(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.type("DEPLOY_ARM unit=alpine")
        assert "HAZARDOUS: Enter asks you to type ALPINE to confirm" in h.hint()
        await h.pilot.press("enter")
        await h.pilot.pause()
        assert isinstance(h.app.screen, ConfirmScreen) and h.tc_sent == 0
        send = h.app.screen.query_one("#send")
        assert send.disabled
        await h.type("LANDER", keys=True)  # the addressed unit is not the one acted on
        await h.pilot.press("enter")
        await h.pilot.pause()
        assert isinstance(h.app.screen, ConfirmScreen) and h.tc_sent == 0
        assert "LANDER is not ALPINE" in str(h.app.screen.query_one("#confirm-error", Static).render())
        h.shot("hazardous-confirm", docs=True)
        await h.pilot.press("escape")
        await h.pilot.pause()
        assert not isinstance(h.app.screen, ConfirmScreen)
        assert h.tc_sent == 0 and h.app.commands.entries == []
        assert any("cancelled: DEPLOY_ARM unit=ALPINE → LANDER was not sent" in t for t in h.events_text())
        # again, and confirm (case does not matter)
        await h.pilot.press("up")
        assert h.line.value == "DEPLOY_ARM unit=alpine"
        await h.pilot.press("enter")
        await h.pilot.pause()
        await h.type("alpine", keys=True)
        assert not h.app.screen.query_one("#send").disabled
        await h.pilot.press("enter")
        await h.pilot.pause()
        assert not isinstance(h.app.screen, ConfirmScreen) and h.tc_sent == 1
        await h.run(1.0)
        # PRELAUNCH forbids deploy commands: the flight software says so at acceptance
        assert h.command_cells(0)[-1] == "FAILED PHASE_FORBIDS at acc"

    console(body, tmp_path)


def test_send_refuses_a_hazardous_command_that_was_not_confirmed(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        from ground.console_model import validate

        v = validate(D, "DEPLOY_FIRE unit=LUPINE")
        with pytest.raises(ValueError, match="not confirmed"):
            h.app.send_validated(v, "DEPLOY_FIRE unit=LUPINE")
        assert h.tc_sent == 0

    console(body, tmp_path)


# -- telemetry and events -----------------------------------------------------------------------------------

def _style_of(segments: list[Segment], text: str) -> Any:
    for seg in segments:
        if text in seg.text:
            return seg.style
    raise AssertionError(f"{text!r} not drawn in {[s.text for s in segments]}")


def test_telemetry_is_coloured_by_limit_state_and_events_by_severity(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.app.submit_line("PAYLOAD_POWER_ON unit=FSS")
        await h.run(8.0)
        fss = h.app.backend.bench.hardware.unit("FSS")
        fss.values["FSS_TEMP_VBB"] = 52.5   # warn above 45
        fss.values["FSS_BATT_V"] = 21.0     # alarm below 22
        await h.run(2.0)
        table = h.app._q("#params", ParamTable)
        text, segs = table.row_text("FSS_TEMP_VBB")
        assert "52.5" in text and "degC" in text and "WARN" in text
        assert _style_of(segs, "52.5").bgcolor.name == "yellow"
        text, segs = table.row_text("FSS_BATT_V")
        assert "ALARM" in text and _style_of(segs, "21").bgcolor.name == "red"
        text, segs = table.row_text("FSS_TEMP_EBOX")
        assert _style_of(segs, text.split()[2]).color.name == "green"  # inside its limits
        status = str(h.app._q("#status", Static).render())
        assert "limits: 1 alarm" in status and "1 warn" in status and "CONTACT" in status
        h.app.submit_line("/FSS_HK")
        await h.run(0.5)
        assert {r.param for r in h.app.telemetry.visible} == {p.name for p in D.packet("FSS_HK").params}
        h.shot("telemetry-limits", docs=True)
        h.app.submit_line("/!")
        await h.run(0.5)
        assert [r.param for r in h.app.telemetry.visible] == ["FSS_TEMP_VBB", "FSS_BATT_V"]
        h.app.submit_line("/")
        # a short circuit: the PDU trips the channel, two HIGH events
        h.app.submit_line(":inject FSS overcurrent")
        await h.run(2.0)
        log = h.app._q("#events", RichLog)
        high = [strip for strip in log.lines if "PDU_TRIP" in strip.text]
        assert high, h.events_text()
        kind = next(seg for seg in high[0] if seg.text.strip() == "HIGH")
        assert kind.style.bgcolor.name == "red"
        info = next(strip for strip in log.lines if "PAYLOAD_STATE_CHANGED" in strip.text)
        assert next(seg for seg in info if seg.text.strip() == "INFO").style == STYLES["INFO"]
        assert "HIGH 2" in str(log.border_title)
        assert any("injected overcurrent into FSS" in t for t in h.events_text())
        h.shot("events", docs=True)

    console(body, tmp_path)


def test_decoded_strings_are_shown_as_data_never_as_markup(tmp_path: Path) -> None:
    hostile = "[bold red]x"
    async def body(h: Harness) -> None:
        t = h.app.backend.now()
        h.app.ingest([
            {"packet_type": "TM", "name": "EVIL_HK", "system": "FSS", "time": t, "limits": {},
             "params": {"EVIL_NAME": hostile, "EVIL_TAG": "[/]unbalanced[/nope]", "EVIL_CTL": "\x1b[2Jwipe"}},
            {"packet_type": "TM", "apid": 0x20, "event_id": 99, "event": "[blink]EVT", "severity": "HIGH",
             "system": "FSS", "time": t, "params": {"EVT_ARG": "[link=http://x]click[/link]"}, "limits": {}},
            {"error": "crc", "detail": "[red]bad[/red] \x07", "apid": 0x20, "system": "FSS", "rx_time": t},
        ])
        h.app.submit_line("/EVIL")
        await h.run(0.5)
        table = h.app._q("#params", ParamTable)
        assert hostile in table.row_text("EVIL_NAME")[0]
        assert "[/]unbalanced[/nope]" in table.row_text("EVIL_TAG")[0]
        assert "\\x1b[2Jwipe" in table.row_text("EVIL_CTL")[0]
        drawn = h.events_drawn()
        assert "[blink]EVT EVT_ARG=[link=http://x]click[/link]" in drawn
        assert "apid 0x020: [red]bad[/red] \\x07" in drawn
        svg = h.shot("markup").read_text()
        assert "[bold&#160;red]x" in svg or "[bold red]x" in svg
        # the status bar and the hint line escape nothing either: the filter text is shown as typed
        h.app.submit_line("/[b]EVIL")
        await h.run(0.5)
        assert "filter /[b]EVIL" in str(h.app._q("#status", Static).render())

    console(body, tmp_path)


# -- status panes -------------------------------------------------------------------------------------------

def test_payload_deploy_and_link_panes(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        h.app.submit_line("PAYLOAD_POWER_ON unit=FSS")
        await h.run(8.0)
        h.app.submit_line("FSS_SET_MODE mode=SCIENCE")
        await h.run(3.0)
        await h.pilot.press("f3")
        await h.run(1.0)
        assert h.app._q("#main", TabbedContent).active == "tab-payloads"
        grid = h.app._q("#grid-payloads", GridTable)
        assert grid.cell_text("PL_STATE", "FSS") == ("OPERATING", "plain")
        assert grid.cell_text("PL_MODE", "FSS") == ("SCIENCE", "plain")
        assert grid.cell_text("PL_STATE", "LMS") == ("OFF", "plain")
        assert grid.cell_text("PDU main ON", "FSS") == ("true", "plain")
        power = float(grid.cell_text("PL_POWER", "FSS")[0])
        assert 10 < power < 20  # FSS science mode draws 15 W
        assert h.app._q("#grid-power", GridTable).cell_text("POWER_ALLOC_W", "value")[0] == "60"
        h.shot("payloads", docs=True)
        await h.pilot.press("f4")
        await h.run(1.0)
        dep = h.app._q("#grid-deploy", GridTable)
        for unit in ("ALPINE", "LUPINE"):
            state = dep.cell_text("DEP_STATE", unit)[0]
            assert state in D.lander.enums["DEPLOY_STATE"].values
            assert dep.cell_text("DEP_ARM_RELAY", unit) == ("false", "plain")
        h.shot("deploy")
        await h.pilot.press("f5")
        await h.run(3.0)
        link = h.app._q("#grid-link", GridTable)
        assert link.cell_text("LINK_UP", "FSS") == ("true", "plain")
        assert float(link.cell_text("LINK_RX_BYTES/s", "FSS")[0].rstrip("k")) > 0
        ground = str(h.app._q("#ground-link", Static).render())
        assert "CONTACT" in ground and "decode errors 0" in ground
        await h.pilot.press("f2")
        assert h.app._q("#main", TabbedContent).active == "tab-tm"

    console(body, tmp_path)


def test_keyboard_only_navigation(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        await h.pilot.press("question_mark")  # on an empty command line: help
        await h.pilot.pause()
        assert isinstance(h.app.screen, HelpScreen)
        h.shot("help")
        await h.pilot.press("escape")
        await h.pilot.pause()
        assert not isinstance(h.app.screen, HelpScreen)
        await h.type("PI")
        await h.pilot.press("question_mark")  # inside a word: typed as is
        assert h.line.value == "PI?"
        h.app._set_line("")
        await h.pilot.press("escape")  # leave the command line
        assert h.app.focused is h.app._q("#params", ParamTable)
        await h.pilot.press("2")
        assert h.app._q("#main", TabbedContent).active == "tab-payloads"
        await h.pilot.press("4")
        assert h.app._q("#main", TabbedContent).active == "tab-link"
        await h.pilot.press("e")
        assert h.app.focused is h.app._q("#events", RichLog)
        await h.pilot.press("c")
        assert h.app.focused is h.commands()
        await h.pilot.press("slash")  # back to the line, ready for a filter
        assert h.app.focused is h.line and h.line.value == "/"
        await h.pilot.press("escape", "p")  # pause the simulation
        assert h.app.backend.paused
        before = h.app.backend.now()
        await h.run(2.0)
        assert h.app.backend.now() == before
        await h.pilot.press("p", "plus")
        assert not h.app.backend.paused and h.app.backend.rate == 2.0
        await h.pilot.press("q")
        await h.pilot.pause()
        assert h.app._exit

    console(body, tmp_path)


# -- the other backends -------------------------------------------------------------------------------------

def test_synthetic_backend_feeds_the_table_and_sends_nothing(tmp_path: Path) -> None:
    wall = FakeWall()
    backend = SyntheticBackend(D, 300, 10.0, wall=wall)
    app = ConsoleApp(backend, timers=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(5):
                wall.t += 0.1
                app.pump()
            await pilot.pause()
            assert len(app.telemetry) == 300
            assert app.metrics["records"] == backend.packets >= 30 and backend.params == 50 * backend.packets
            table = app._q("#params", ParamTable)
            assert table.row_text("SYN_P0000")[0].startswith("SYN_HK_000")
            app.submit_line("PING")
            await pilot.pause()
            assert app.commands.entries[0].error.startswith("the synthetic backend has no flight software")
            assert "NOT SENT" in str(app._q("#commands", CommandPane).get_cell_at((0, 6)))

    asyncio.run(main())


class _FakeLink:
    """Just enough of fsw.io.link.Link for a GroundSession: bytes in by hand, bytes out kept."""

    def __init__(self) -> None:
        self.inbox = bytearray()
        self.written: list[bytes] = []
        self.connected = True
        self.stats = {"bytes_in": 0, "bytes_out": 0, "reconnects": 0}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, timeout: float) -> bytes:
        data = bytes(self.inbox)
        self.inbox.clear()
        self.stats["bytes_in"] += len(data)
        return data

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.stats["bytes_out"] += len(data)


def test_live_backend_over_a_session(tmp_path: Path) -> None:
    link = _FakeLink()
    session = GroundSession("fake://", D, link=link, connect_timeout_s=0.0)
    backend = LiveBackend("fake://", D, session=session)
    app = ConsoleApp(backend, timers=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            app.submit_line("PING --to LMS")
            await pilot.pause()
            assert len(link.written) == 1
            tc = app.commands.entries[0].handle
            assert isinstance(tc, PusTc) and tc.apid == D.system("LMS").apid
            ok = D.packet("ACCEPT_OK")
            report = PusTm(tc.apid, 1, 1, D.encode_tm(ok, {"TC_PACKET_ID": 0x1800 | tc.apid,
                                                            "TC_SEQ_CTRL": 0xC000 | tc.seq_count}))
            link.inbox += b"\x00junk" + frame(report.pack())
            app.pump()
            await pilot.pause()
            assert app.commands.entries[0].result.reports[0].stage == "acceptance"
            assert str(app._q("#commands", CommandPane).get_cell_at((0, 2))) == "✓"
            stats = app.link.stats
            assert stats["connected"] and stats["rx_packets"] == 1 and stats["last_rx"] is not None
            link.connected = False  # the link drops: nothing is sent, the operator is told why
            app.submit_line("PING")
            await pilot.pause()
            assert len(link.written) == 1
            assert "is not connected" in app.commands.entries[1].error
            app.refresh_screen()
            assert "LINK DOWN" in str(app._q("#status", Static).render())

    asyncio.run(main())


def test_live_backend_over_the_space_link() -> None:
    """The console over the far-side link: a PING goes up through COP-1 and the lossy relay, its reports come
    back through the stores, and the ground-link panel shows the link state line (FOP-1, COP-1 counters)."""
    from tests.unit.test_ground_session_spacelink import session as space_session

    s, far, clock = space_session(7, loss=0.05, duplicate=0.05)
    backend = LiveBackend("far://", D, session=s)
    assert backend.space_link and backend.label == "space link far://"
    app = ConsoleApp(backend, timers=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            assert s.wait_connected()
            app.submit_line("PING --to LMS")
            await pilot.pause()
            entry = app.commands.entries[0]
            assert entry.error is None
            for _ in range(60):                     # the far end runs on the simulated clock as the session reads
                if entry.result is not None and entry.result.state == "SUCCESS":
                    break
                s.poll(1.0)
                app.pump()
            assert entry.result is not None and entry.result.state == "SUCCESS"
            assert [r["name"] for r in far.fsw.received].count("PING") == 1
            stats = backend.link_stats()
            assert stats["space_link"].startswith("link: contact yes; FOP-1 ACTIVE")
            await pilot.press("f5")                  # the link tab
            app.refresh_screen()
            panel = str(app._q("#ground-link", Static).render())
            assert "space link far://" in panel and "FOP-1 ACTIVE" in panel

    asyncio.run(main())


# -- the command line of ``ground console`` ----------------------------------------------------------------

def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ground")
    p.add_argument("--dictionary", default=None)
    add_console_parser(p.add_subparsers(dest="subcommand"))
    return p.parse_args(["console", *argv])


def test_console_options_pick_the_backend() -> None:
    from ground.cli import UsageError

    args = _parse("--sim", "--rate", "10", "--phase", "surface")
    backend = make_backend(args, D)
    assert isinstance(backend, SimBackend) and backend.rate == 10.0
    assert backend.bench.fsw.phases.current.name == "SURFACE"
    assert isinstance(make_backend(_parse("--synthetic", "1000", "--hz", "10"), D), SyntheticBackend)
    with pytest.raises(UsageError, match="choose one of --sim and --synthetic"):
        make_backend(_parse("--sim", "--synthetic", "5"), D)
    with pytest.raises(UsageError, match="--link cannot be combined"):
        make_backend(_parse("--sim", "--link", "loop://"), D)
    with pytest.raises(UsageError, match="unknown phase 'mars'"):
        make_backend(_parse("--sim", "--phase", "mars"), D)
    space = _parse("--sim")
    space.space_link = True                      # the global option, set by ground's own parser
    with pytest.raises(UsageError, match="--space-link needs a link"):
        make_backend(space, D)
    with pytest.raises(SystemExit):
        _parse("--rate", "0")


def test_console_needs_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from ground.console import cmd_console
    from ground.cli import UsageError

    with pytest.raises(UsageError, match="needs a terminal"):
        cmd_console(_parse("--sim"))


def test_a_failing_backend_is_reported_once_and_the_console_keeps_running(tmp_path: Path) -> None:
    class Broken(SyntheticBackend):
        def poll(self) -> list[dict]:
            raise OSError("device unplugged")

    app = ConsoleApp(Broken(D, 10, 1.0, wall=FakeWall()), timers=False)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(5):
                app.pump()
            await pilot.pause()
            errors = [e for e in app.events.entries if e.kind == "error"]
            assert [e.text for e in errors] == ["backend error: OSError: device unplugged"]
            app.submit_line("PING")  # still usable
            assert len(app.commands.entries) == 1

    asyncio.run(main())
