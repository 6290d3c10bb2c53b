"""The operator console's Textual application (``ground console``).

Layout, top to bottom: a status bar (backend, mission time, phase, contact,
rates, drops, limit violations, pending commands); the main panes in tabs
(Telemetry, Payloads & power, Deploy, Link); events beside the command
verification list; the hint line; the command line; the key bar.

Speed: backends are polled at ``poll_hz`` into the pure models of
:mod:`ground.console_model` (cheap: no formatting, no widgets touched); the
screen is brought up to date at ``refresh_hz`` and only where something
changed: the telemetry table is a line-API widget that repaints just the
visible lines whose row changed; the grids update only cells whose text or
colour changed; tabs that are not shown are not touched at all.

Safety: text from the link only ever enters the screen inside Rich ``Text``
objects or ``Segment``s (never markup), after :func:`console_model.clean`.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.suggester import Suggester
from textual.widgets import Button, DataTable, Footer, Input, RichLog, Static, TabbedContent, TabPane

from .console_model import (
    CommandEntry, CommandLog, Completer, EventLog, GridView, History, LinkMonitor, Row, TabCycler, TelemetryModel,
    Validation, clean, grid_views, validate,
)

#: colours of the model's style tokens
STYLES: dict[str, Style] = {
    "plain": Style(),
    "nominal": Style(color="green"),
    "warn": Style(color="black", bgcolor="yellow", bold=True),
    "alarm": Style(color="bright_white", bgcolor="red", bold=True),
    "stale": Style(color="grey50", italic=True),
    "dim": Style(color="grey62"),
    "header": Style(bold=True, underline=True),
    "key": Style(color="bright_cyan", bold=True),
    "name": Style(color="cyan"),
    "INFO": Style(),
    "LOW": Style(color="cyan"),
    "MEDIUM": Style(color="yellow", bold=True),
    "HIGH": Style(color="bright_white", bgcolor="red", bold=True),
    "error": Style(color="red"),
    "dropped": Style(color="magenta"),
    "link": Style(color="bright_blue"),
    "note": Style(color="grey70", italic=True),
    "good": Style(color="green", bold=True),
    "bad": Style(color="bright_red", bold=True),
    "pending": Style(color="yellow"),
    "timeout": Style(color="magenta", bold=True),
    "hazard": Style(color="bright_white", bgcolor="red", bold=True),
}

HELP = [
    ("Command line", [
        ("NAME arg=value ...", "send a telecommand (e.g. FSS_SET_MODE mode=SCIENCE)"),
        ("NAME --to UNIT", "address a standard command (PING, HK_*) to a unit"),
        ("NAME --timeout S", "wait S seconds for completion instead of the dictionary's timeout"),
        ("Tab", "complete the word; Tab again cycles through the choices"),
        ("→ (at the end)", "accept the greyed suggestion"),
        ("↑ / ↓", "command history"),
        ("Enter", "validate and send; a hazardous command asks you to type the unit it acts on"),
        ("/TEXT", "filter the telemetry (every word must match); / alone clears; /! keeps out-of-limit rows"),
        (":inject UNIT FAULT", "(--sim) inject a fault: silent, babble, crash, overcurrent, clear ..."),
        (":rate X   :pause   :resume", "(--sim) simulation speed"),
        ("Esc", "leave the command line (the keys below then work)"),
    ]),
    ("Anywhere", [
        ("F1", "this help"),
        ("F2 F3 F4 F5", "Telemetry, Payloads & power, Deploy, Link"),
        ("Ctrl+Q", "quit"),
    ]),
    ("Outside the command line", [
        ("1 2 3 4", "Telemetry, Payloads & power, Deploy, Link"),
        ("e / c / t", "focus events / commands / the main pane (then ↑ ↓ PgUp PgDn Home End scroll)"),
        ("i, :, / or Enter", "back to the command line"),
        ("p / + / -", "(--sim) pause, faster, slower"),
        ("?", "this help"),
        ("q", "quit"),
    ]),
]


def styled(parts: Iterable[tuple[str, str]]) -> Text:
    """Text from ``(text, token)`` pieces: no markup is ever parsed."""
    t = Text(no_wrap=True, overflow="ellipsis")
    prev: Style | None = None
    for s, tok in parts:
        style = STYLES.get(tok, STYLES["plain"])
        if prev is not None and prev.bgcolor is None and s[:1] == " ":
            # leading spaces join the previous piece (same look): SVG renderers drop a leading space
            body = s.lstrip(" ")
            t.append(s[:len(s) - len(body)], prev)
            s = body
        if s:
            t.append(s, style)
            prev = style
    return t


# -- widgets --------------------------------------------------------------------------------------------------

class ParamTable(ScrollView, can_focus=True):
    """Every parameter's latest value: a line-API table drawn from :class:`TelemetryModel`.

    Line 0 is a fixed header.  A row's line is cached with the row's version
    and style, so a refresh rebuilds only lines whose value, limit state or
    staleness changed, and repaints only those that are on screen.
    """

    DEFAULT_CSS = """
    ParamTable { height: 1fr; }
    """
    COLUMNS = (("packet", 22, "<"), ("parameter", 24, "<"), ("value", 24, ">"), ("unit", 7, "<"),
               ("limit", 6, "<"), ("time (UTC)", 12, "<"))

    def __init__(self, model: TelemetryModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.now = 0.0
        self._structure = -1
        self._cache: dict[Row, tuple[tuple, Strip]] = {}
        self._width = sum(w + 1 for _, w, _ in self.COLUMNS)
        self.lines_built = 0

    # the model -> the screen
    def sync(self, now: float) -> int:
        """Bring the screen up to date; returns how many lines were repainted."""
        self.now = now
        model = self.model
        dirty = model.take_dirty()
        if model.limits_only:
            model.refilter()
        if model.structure != self._structure:
            self._structure = model.structure
            self.virtual_size = Size(self._width, len(model.visible) + 1)
            self._cache.clear()
            self.refresh()
            return self.size.height
        top = int(self.scroll_offset.y)
        visible = model.visible
        end = min(len(visible), top + max(0, self.size.height - 1))
        painted = 0
        for i in range(top, end):
            row = visible[i]
            cached = self._cache.get(row)
            if row in dirty or cached is None or cached[0] != self._state(row):
                self.refresh_lines(i + 1)
                painted += 1
        return painted

    def _state(self, row: Row) -> tuple:
        return (row.version, self.model.token(row, self.now))

    def _strip(self, row: Row) -> Strip:
        state = self._state(row)
        cached = self._cache.get(row)
        if cached is not None and cached[0] == state:
            return cached[1]
        token = state[1]
        m = self.model
        base = self.rich_style
        dim = base + STYLES["dim"]
        vstyle = base + STYLES[token]
        limit = {"warn": "WARN", "alarm": "ALARM", "stale": "stale"}.get(token, "")
        texts = (row.label, row.param, m.text(row), row.unit, limit, m.time_text(row))
        styles = (dim, base + STYLES["key"] if token in ("warn", "alarm") else base, vstyle, dim,
                  base + STYLES[token] if limit else dim, dim)
        segs = []
        for (text, (_, w, align), st) in zip(texts, self.COLUMNS, styles):
            if len(text) > w:
                text = text[:w - 1] + "…"
            segs.append(Segment(text.rjust(w) if align == ">" else text.ljust(w), st))
            segs.append(Segment(" ", base))
        strip = Strip(segs, self._width)
        self._cache[row] = (state, strip)
        self.lines_built += 1
        return strip

    def _header(self) -> Strip:
        st = self.rich_style + STYLES["header"]
        segs = []
        for name, w, align in self.COLUMNS:
            segs.append(Segment(name.rjust(w) if align == ">" else name.ljust(w), st))
            segs.append(Segment(" ", self.rich_style))
        return Strip(segs, self._width)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            strip = self._header()
        else:
            i = scroll_y + y - 1
            visible = self.model.visible
            if i >= len(visible):
                if not visible and y == 1:
                    msg = "no telemetry yet" if not len(self.model) else f"nothing matches /{self.model.filter_text}"
                    strip = Strip([Segment(msg, self.rich_style + STYLES["dim"])])
                else:
                    return Strip.blank(width, self.rich_style)
            else:
                strip = self._strip(visible[i])
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def row_text(self, param: str, label: str | None = None) -> tuple[str, list[Segment]] | None:
        """(plain text, segments) of the line of ``param`` as drawn (tests and screenshots)."""
        for row in self.model.visible:
            if row.param == param and (label is None or row.label == label):
                strip = self._strip(row)
                return strip.text, list(strip)
        return None


class GridTable(DataTable):
    """One :class:`GridView` (parameters down, units across); only changed cells are updated."""

    DEFAULT_CSS = """
    GridTable { height: auto; max-height: 100%; }
    """

    def __init__(self, view: GridView, model: TelemetryModel, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, show_cursor=False, **kwargs)
        self.view = view
        self.model = model
        self._last: list[list[tuple[str, str] | None]] = [[None] * len(view.columns) for _ in view.rows]
        self.cells_updated = 0

    def on_mount(self) -> None:
        self.add_column(Text("parameter", style="bold"), key="_param", width=24)
        self.add_column(Text("unit", style="bold"), key="_unit", width=5)
        for c in self.view.columns:
            self.add_column(Text(c.ljust(8), style="bold"), key=f"c:{c}")  # grows with update_width
        for r, row in enumerate(self.view.rows):
            self.add_row(Text(row.label, style="grey70"), Text(row.unit, style="grey62"),
                         *[Text("—", style="grey62") for _ in self.view.columns], key=str(r))

    def sync(self, now: float) -> int:
        n = 0
        for r, cells in enumerate(self.view.table(self.model, now)):
            last = self._last[r]
            for c, cell in enumerate(cells):
                if last[c] != cell:
                    last[c] = cell
                    text, tok = cell
                    self.update_cell(str(r), f"c:{self.view.columns[c]}", Text(text, style=STYLES.get(tok, Style())),
                                     update_width=True)
                    n += 1
        self.cells_updated += n
        return n

    def cell_text(self, row_label: str, column: str) -> tuple[str, str] | None:
        for r, row in enumerate(self.view.rows):
            if row.label == row_label:
                return self._last[r][self.view.columns.index(column)]
        return None


class CommandPane(DataTable):
    """Sent commands with their verification stages as they arrive."""

    def __init__(self, log: CommandLog, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.cmdlog = log
        self._shown: dict[int, int] = {}   # entry id -> version drawn

    def on_mount(self) -> None:
        for name in CommandLog.COLUMNS:
            self.add_column(Text(name, style="bold"), key=name)

    def sync(self, entries: list[CommandEntry]) -> int:
        n = 0
        for rid in self.cmdlog.take_dropped():
            if rid in self._shown:
                self.remove_row(str(rid))
                del self._shown[rid]
        for e in entries:
            shown = self._shown.get(e.id)
            if shown == e.version:
                continue
            cells = [Text(t, style=STYLES.get(tok, Style())) for t, tok in self.cmdlog.cells(e)]
            if shown is None:
                self.add_row(*cells, key=str(e.id))
                self.move_cursor(row=self.row_count - 1)
            else:
                for name, cell in zip(CommandLog.COLUMNS, cells):
                    self.update_cell(str(e.id), name, cell, update_width=True)
            self._shown[e.id] = e.version
            n += 1
        return n


class DictSuggester(Suggester):
    """The greyed inline suggestion of the command line."""

    def __init__(self, completer: Completer) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.completer = completer

    async def get_suggestion(self, value: str) -> str | None:
        return self.completer.suggest(value)


class CommandInput(Input):
    """The command line: Tab completes, ↑/↓ browse the history, Esc leaves."""

    BINDINGS = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "History", show=False),
        Binding("down", "history(1)", "History", show=False),
        Binding("escape", "leave", "Leave line", show=False),
    ]

    def action_complete(self) -> None:
        self.app.complete_line()  # type: ignore[attr-defined]

    def action_history(self, step: int) -> None:
        self.app.history_step(step)  # type: ignore[attr-defined]

    def action_leave(self) -> None:
        self.app.action_leave_line()  # type: ignore[attr-defined]

    async def _on_key(self, event: Any) -> None:
        # runs before Input's own handler (Textual walks the MRO); "?" on an empty line opens the help
        if event.character == "?" and not self.value:
            event.stop()
            event.prevent_default()
            self.app.action_help()  # type: ignore[attr-defined]


# -- screens ------------------------------------------------------------------------------------------------

class ConfirmScreen(ModalScreen[bool]):
    """Hazardous command: shows what will be sent and asks for the unit it acts on, typed out."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    #dialog { width: 84; height: auto; border: heavy red; background: $surface; padding: 1 2; }
    #dialog > Static { width: 100%; margin-bottom: 1; }
    #confirm-input { width: 100%; }
    #confirm-error { color: red; height: 1; }
    #buttons { height: auto; align-horizontal: right; }
    #buttons Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, validation: Validation, line: str) -> None:
        super().__init__()
        self.validation = validation
        self.line = line
        self.target = validation.target or (validation.system or "")

    def compose(self) -> ComposeResult:
        v = self.validation
        cmd = v.command
        assert cmd is not None
        with Vertical(id="dialog"):
            yield Static(Text(" HAZARDOUS COMMAND ", style=STYLES["hazard"]))
            yield Static(styled([("send   ", "dim"), (clean(v.summary()), "key")]))
            if cmd.description:
                yield Static(Text(clean(cmd.description, 400), style="grey70"))
            yield Static(styled([("acts on ", "dim"), (self.target, "key"),
                                 (f"   (addressed to {v.system}; completion within {v.timeout or cmd.timeout_s:g} s)",
                                  "dim")]))
            yield Static(styled([("Type ", "plain"), (self.target, "key"),
                                 (" and press Enter to send it.  Esc cancels: nothing is sent.", "plain")]))
            yield Input(placeholder=f"type {self.target}", id="confirm-input", select_on_focus=False)
            yield Static("", id="confirm-error")
            with Horizontal(id="buttons"):
                yield Button("Send", id="send", variant="error", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm-input", Input).focus()

    def _matches(self, typed: str) -> bool:
        return typed.strip().upper() == self.target.upper()

    @on(Input.Changed, "#confirm-input")
    def _changed(self, event: Input.Changed) -> None:
        self.query_one("#send", Button).disabled = not self._matches(event.value)
        self.query_one("#confirm-error", Static).update("")

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self._matches(event.value):
            self.dismiss(True)
        else:
            shown = clean(event.value.strip(), 40) or "nothing"
            self.query_one("#confirm-error", Static).update(
                Text(f"{shown!s} is not {self.target}: type {self.target} to send, Esc to cancel"))

    @on(Button.Pressed, "#send")
    def _send(self) -> None:
        if self._matches(self.query_one("#confirm-input", Input).value):
            self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def _cancel_button(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 110; max-width: 95%; height: auto; max-height: 90%; border: round $primary;
            background: $surface; padding: 1 2; }
    """
    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False),
                Binding("question_mark", "close", "Close", show=False), Binding("f1", "close", "Close", show=False)]

    def compose(self) -> ComposeResult:
        parts: list[Any] = [Text("Operator console — keys", style="bold")]
        for title, rows in HELP:
            parts.append(Text(f"\n{title}", style="bold underline"))
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style=STYLES["key"], no_wrap=True)
            grid.add_column()
            for key, what in rows:
                grid.add_row(key, what)
            parts.append(grid)
        legend = styled([("\nColours: ", "plain"), ("nominal", "nominal"), ("  ", "plain"), (" WARN ", "warn"),
                         ("  ", "plain"), (" ALARM ", "alarm"), ("  stale: no update for 3 periods", "stale")])
        events = styled([("Events: INFO  ", "INFO"), ("LOW", "LOW"), ("  ", "plain"), ("MEDIUM", "MEDIUM"),
                         ("  ", "plain"), (" HIGH ", "HIGH"), ("\n\nEsc closes.", "dim")])
        with VerticalScroll(id="help"):
            yield Static(Group(*parts, legend, events))

    def action_close(self) -> None:
        self.dismiss(None)


# -- the application ----------------------------------------------------------------------------------------

TABS = ("tab-tm", "tab-payloads", "tab-deploy", "tab-link")


class ConsoleApp(App[None]):
    """The console over any :class:`ground.console.ConsoleBackend`."""

    TITLE = "ground console"
    ENABLE_COMMAND_PALETTE = False  # every action has its key; the palette would only add a second way
    CSS = """
    #status { height: 1; background: $panel; }
    #main { height: 1fr; }
    #bottom { height: 12; }
    #events { width: 1fr; border: round $primary-darken-1; }
    #commands { width: 1fr; border: round $primary-darken-1; }
    #events:focus-within, #commands:focus-within { border: round $accent; }
    #hint { height: 3; padding: 0 1; }
    #cmdline { height: 3; border: round $accent; }
    .grid-title { height: 1; margin-top: 1; text-style: bold; }
    #ground-link { height: auto; padding: 0 1; }
    #params { border: none; }
    """
    BINDINGS = [
        Binding("f1", "help", "Help"),
        Binding("f2", "tab(0)", "Telemetry"),
        Binding("f3", "tab(1)", "Payloads"),
        Binding("f4", "tab(2)", "Deploy"),
        Binding("f5", "tab(3)", "Link"),
        Binding("question_mark", "help", "Help", show=False),
        Binding("q", "quit", "Quit", show=False),
        Binding("1", "tab(0)", show=False), Binding("2", "tab(1)", show=False),
        Binding("3", "tab(2)", show=False), Binding("4", "tab(3)", show=False),
        Binding("e", "focus_pane('events')", show=False),
        Binding("c", "focus_pane('commands')", show=False),
        Binding("t", "focus_pane('main')", show=False),
        Binding("i", "enter_line", show=False), Binding("colon", "enter_line(':')", show=False),
        Binding("slash", "enter_line('/')", show=False), Binding("enter", "enter_line", show=False),
        Binding("p", "sim_pause", show=False),
        Binding("plus", "sim_rate(2)", show=False), Binding("minus", "sim_rate(0.5)", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, backend: Any, *, refresh_hz: float = 5.0, poll_hz: float = 20.0,
                 timers: bool = True, show_timing: bool = True) -> None:
        super().__init__()
        self.backend = backend
        d = backend.dictionary
        self.dictionary = d
        self.refresh_hz = refresh_hz
        self.poll_hz = poll_hz
        self.use_timers = timers
        self.show_timing = show_timing  # the last redraw's duration in the status bar
        self.telemetry = TelemetryModel(d)
        self.events = EventLog(d)
        self.commands = CommandLog(d)
        self.link = LinkMonitor(d)
        self.completer = Completer(d)
        self.cycler = TabCycler(self.completer)
        self.history = History()
        self.views = grid_views(d)
        self.grids: dict[str, list[GridTable]] = {k: [] for k in self.views}
        self._line_error: str | None = None
        self._tab_hint: tuple[str, list[tuple[str, str]]] | None = None
        self._phase_ref = self._find_phase_param()
        self._live = False
        self._last_backend_error: str | None = None
        self._console_timers: list[Any] = []
        self._base: Any = None
        self.metrics: dict[str, float] = {
            "records": 0, "polls": 0, "refreshes": 0, "refresh_ms_last": 0.0, "refresh_ms_max": 0.0,
            "refresh_ms_total": 0.0, "poll_ms_max": 0.0, "poll_ms_total": 0.0, "lines_painted": 0,
            "cells_updated": 0,
        }

    def _find_phase_param(self) -> tuple[str, str] | None:
        """(packet, parameter) of the lander's mission-phase telemetry (the parameter with the PHASE enum)."""
        for pkt in self.dictionary.lander.telemetry:
            for prm in pkt.params:
                if prm.enum is not None and prm.enum.name == "PHASE":
                    return pkt.name, prm.name
        return None

    # -- layout ---------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="status")
        with TabbedContent(id="main", initial="tab-tm"):
            with TabPane("Telemetry [F2]", id="tab-tm"):
                yield ParamTable(self.telemetry, id="params")
            with TabPane("Payloads & power [F3]", id="tab-payloads"):
                with VerticalScroll():
                    yield from self._grid_widgets("payloads")
            with TabPane("Deploy [F4]", id="tab-deploy"):
                with VerticalScroll():
                    yield from self._grid_widgets("deploy")
            with TabPane("Link [F5]", id="tab-link"):
                with VerticalScroll():
                    yield Static(id="ground-link")
                    yield from self._grid_widgets("link")
        with Horizontal(id="bottom"):
            yield RichLog(id="events", max_lines=2000, wrap=True, markup=False, highlight=False, min_width=20)
            yield CommandPane(self.commands, id="commands")
        yield Static(id="hint")
        yield CommandInput(placeholder="command  (Tab completes, ? help)", id="cmdline",
                           suggester=DictSuggester(self.completer), select_on_focus=False)
        yield Footer()

    def _grid_widgets(self, pane: str) -> Iterable[Any]:
        views = self.views.get(pane) or []
        if not views:
            yield Static(Text("this mission's dictionary declares no packet for this pane", style="grey62"))
        for v in views:
            yield Static(Text(v.title), classes="grid-title")
            g = GridTable(v, self.telemetry, id=f"grid-{v.key}")
            self.grids[pane].append(g)
            yield g

    def _q(self, selector: str, kind: Any) -> Any:
        """A widget of the console's own screen (whatever dialog is on top)."""
        return self._base.query_one(selector, kind)

    def on_mount(self) -> None:
        self._base = self.screen
        self._q("#events", RichLog).border_title = "Events"
        self._q("#commands", CommandPane).border_title = "Commands (verification)"
        self._q("#cmdline", CommandInput).border_title = "command"
        self.backend.start()
        self.events.note(f"console started on {self.backend.label}", self.backend.now())
        self._update_hint()
        self._q("#cmdline", CommandInput).focus()
        self._live = True
        if self.use_timers:
            self._console_timers = [self.set_interval(1.0 / self.poll_hz, lambda: self._tick("poll")),
                                    self.set_interval(1.0 / self.refresh_hz, lambda: self._tick("refresh"))]
        self.refresh_screen()

    def _tick(self, what: str) -> None:
        try:
            if what == "poll":
                self.poll_backend()
            else:
                self.refresh_screen()
        except NoMatches:  # the widgets are going away: the app is shutting down
            self._live = False

    def on_unmount(self) -> None:
        self._live = False
        for t in self._console_timers:
            t.stop()
        self.backend.stop()

    # -- data in --------------------------------------------------------------------------------------------
    def ingest(self, records: Iterable[dict]) -> int:
        """Feed decoded records to the models (what a poll does; tests feed crafted ones)."""
        now = self.backend.now()
        n = 0
        tm, ev = self.telemetry.ingest, self.events.ingest
        for rec in records:
            tm(rec, now)
            ev(rec, now)
            n += 1
        self.metrics["records"] += n
        return n

    def poll_backend(self) -> None:
        if not self._live:
            return
        t0 = time.perf_counter()
        try:
            records = self.backend.poll()
        except Exception as exc:  # noqa: BLE001 - a backend failure is shown, never a crash
            msg = f"backend error: {type(exc).__name__}: {exc}"
            if msg != self._last_backend_error:  # once, not at every poll
                self._last_backend_error = msg
                self.events.note(msg, self.backend.now(), "error", "error")
            records = []
        else:
            self._last_backend_error = None
        self.ingest(records)
        dt = (time.perf_counter() - t0) * 1000
        m = self.metrics
        m["polls"] += 1
        m["poll_ms_total"] += dt
        m["poll_ms_max"] = max(m["poll_ms_max"], dt)

    def pump(self) -> None:
        """Poll the backend and redraw now (tests; also what the timers do)."""
        self.poll_backend()
        self.refresh_screen()

    # -- screen out -----------------------------------------------------------------------------------------
    def refresh_screen(self) -> None:
        if not self._live:
            return
        t0 = time.perf_counter()
        now = self.backend.now()
        phase = None
        if self._phase_ref is not None:
            row = self.telemetry.get(self._phase_ref[0], None, self._phase_ref[1], self.dictionary.lander.name)
            phase = row.value if row is not None and isinstance(row.value, str) else None
        try:
            self.link.update(self.backend.link_stats(), now, phase)
        except Exception as exc:  # noqa: BLE001
            self.events.note(f"link status unavailable: {exc}", now, "error", "error")
        m = self.metrics
        active = self._q("#main", TabbedContent).active
        if active == "tab-tm":
            m["lines_painted"] += self._q("#params", ParamTable).sync(now)
        else:
            pane = {"tab-payloads": "payloads", "tab-deploy": "deploy", "tab-link": "link"}.get(active)
            for g in self.grids.get(pane or "", []):
                m["cells_updated"] += g.sync(now)
            if pane == "link":
                self._draw_ground_link(now)
        self._draw_events(now)
        self._draw_commands()
        self._draw_status(now, phase)
        dt = (time.perf_counter() - t0) * 1000
        m["refreshes"] += 1
        m["refresh_ms_last"] = dt
        m["refresh_ms_total"] += dt
        m["refresh_ms_max"] = max(m["refresh_ms_max"], dt)

    def _draw_events(self, now: float) -> None:
        self.events.flush(now)
        new, skipped = self.events.take_new()
        log = self._q("#events", RichLog)
        if skipped:
            log.write(styled([(f"… {skipped} more entries not shown in this pane", "dropped")]))
        for e in new:
            parts = [(f"{e.time:<12} ", "dim"), (f"{e.source:<7} ", "dim"), (f"{e.kind:<7}", e.token), (" ", "dim")]
            text_tok = "plain" if e.token in ("INFO", "LOW", "MEDIUM", "HIGH") else e.token
            if e.name:
                # the space goes at the end of the name: renderers of SVG screenshots drop a leading one
                parts.append((e.name + " ", e.token if e.token in ("HIGH", "error", "dropped") else "name"))
                parts.append((e.text, text_tok))
            else:
                parts.append((e.text, text_tok))
            t = styled(parts)
            t.no_wrap = False
            t.overflow = "fold"
            log.write(t)
        c = self.events.counts
        log.border_title = (f"Events  INFO {c['INFO']} · LOW {c['LOW']} · MEDIUM {c['MEDIUM']} · HIGH {c['HIGH']}"
                            f" · errors {c['error']}")

    def _draw_commands(self) -> None:
        pane = self._q("#commands", CommandPane)
        changed = []
        for e in self.commands.entries:
            if e.handle is not None and not e.done:
                self.commands.update(e, self.backend.status(e.handle))
            changed.append(e)
        pane.sync(changed)
        pending = len(self.commands.pending())
        pane.border_title = f"Commands (verification) · {pending} pending"

    def _draw_status(self, now: float, phase: str | None) -> None:
        try:
            t = self.dictionary.epoch.iso(now)[:19].replace("T", " ")
        except (ValueError, OverflowError):
            t = f"{now:.0f}"
        out = self.telemetry.out_of_limits(now)
        alarms = sum(1 for r in out if r.limit == "alarm")
        warns = len(out) - alarms
        parts: list[tuple[str, str]] = [(f" {self.backend.label} ", "key"), (f" {t}Z ", "plain")]
        if phase:
            parts.append((f" {phase} ", "dim"))
        parts += self.link.summary(now)
        parts.append((f" limits: {alarms} alarm ", "alarm" if alarms else "dim"))
        parts.append((f" {warns} warn ", "warn" if warns else "dim"))
        pending = len(self.commands.pending())
        parts.append((f" TC pending {pending} ", "pending" if pending else "dim"))
        if self.telemetry.filter_text:
            parts.append((f" filter /{clean(self.telemetry.filter_text, 30)} ", "key"))
        if self.show_timing:
            parts.append((f" ui {self.metrics['refresh_ms_last']:.0f} ms ", "dim"))
        self._q("#status", Static).update(styled(parts))

    def _draw_ground_link(self, now: float) -> None:
        st = self.link.stats
        label, token = self.link.contact(now)
        pps, bps = self.link.rates()
        last = st.get("last_rx")
        age = "never" if last is None else f"{max(0.0, now - last):.1f} s ago"
        parts = [("Ground link  ", "key"), (self.backend.label, "plain"), ("   ", "plain"), (f" {label} ", token),
                 (f"   last packet {age} (contact timeout {self.link.contact_timeout:g} s)\n", "dim"),
                 (f"rx {st.get('rx_packets', 0)} packets, {st.get('rx_bytes', 0)} B   {pps:.1f} pkt/s  "
                  f"{bps:.0f} B/s   tx {st.get('tx_packets', 0)} packets   ", "plain"),
                 (f"decode errors {st.get('errors', 0)}   dropped {st.get('dropped_bytes', 0)} B   "
                  f"reconnects {st.get('reconnects', 0)}", "warn" if st.get("errors") or st.get("dropped_bytes")
                  else "plain")]
        if st.get("space_link"):
            parts.append(("\n" + str(st["space_link"]), "plain"))
        t = styled(parts)
        t.no_wrap = False
        self._q("#ground-link", Static).update(t)

    # -- the command line ----------------------------------------------------------------------------------
    @on(Input.Changed, "#cmdline")
    def _line_changed(self, event: Input.Changed) -> None:
        # (the Tab cycler notices edits by itself: it compares the line with what it left)
        if self._tab_hint is not None and self._tab_hint[0] == event.value:
            return  # the change a Tab made: keep its list of choices
        self._tab_hint = None
        self._line_error = None
        self._update_hint()

    def _update_hint(self, extra: list[tuple[str, str]] | None = None) -> None:
        """Three lines: the command's signature; choices or the argument's description; the verdict."""
        inp = self._q("#cmdline", CommandInput)
        text = inp.value
        hint = self.completer.hint(text, inp.cursor_position)
        lines: list[Text] = [styled(hint.lines[0])]
        if text.startswith(("/", ":")):
            lines = [styled([("/TEXT filters the telemetry (/! out-of-limit rows, / alone clears); "
                              ":inject UNIT FAULT, :rate X, :pause, :resume drive --sim", "dim")])]
        elif extra:
            lines.append(styled(extra))
        elif len(hint.lines) > 1:
            lines.append(styled(hint.lines[1]))
        if self._line_error is not None:
            verdict = [("✗ ", "bad"), (self._line_error, "bad")]
        else:
            v = validate(self.dictionary, text) if text and not text.startswith(("/", ":")) else None
            if v is None or v.level == "empty":
                verdict = []
            elif v.level == "ok":
                verdict = [("✓ ", "good"), (v.message, "hazard" if v.hazardous else "good")]
            elif v.level == "incomplete":
                verdict = [("… ", "pending"), (v.message, "pending")]
            else:
                verdict = [("✗ ", "bad"), (v.message, "bad")]
        if verdict:
            while len(lines) < 2:
                lines.append(Text(""))
            lines.append(styled(verdict))
        self._q("#hint", Static).update(Text("\n").join(lines))

    def _set_line(self, text: str, cursor: int | None = None) -> None:
        inp = self._q("#cmdline", CommandInput)
        inp.value = text
        inp.cursor_position = len(text) if cursor is None else cursor

    def complete_line(self) -> None:
        inp = self._q("#cmdline", CommandInput)
        comp = self.cycler.tab(inp.value, inp.cursor_position)
        if comp.text != inp.value or comp.cursor != inp.cursor_position:
            self._set_line(comp.text, comp.cursor)
        self._tab_hint = None
        if len(comp.candidates) > 1:
            shown = []
            for i, c in enumerate(comp.candidates[:16]):
                shown.append((c.split("=", 1)[-1] if "=" in c and not c.startswith("--") else c,
                              "key" if i == comp.chosen else "plain"))
                shown.append(("  ", "plain"))
            if len(comp.candidates) > 16:
                shown.append((f"… +{len(comp.candidates) - 16}", "dim"))
            self._line_error = None
            extra = [(f"{len(comp.candidates)} choices (Tab cycles): ", "dim"), *shown]
            self._tab_hint = (comp.text, extra)
            self._update_hint(extra)
        elif not comp.candidates:
            self._update_hint([("no completion here", "dim")])
        else:
            self._update_hint()

    def history_step(self, step: int) -> None:
        inp = self._q("#cmdline", CommandInput)
        text = self.history.back(inp.value) if step < 0 else self.history.forward(inp.value)
        self._set_line(text)
        self._update_hint()

    @on(Input.Submitted, "#cmdline")
    def _line_submitted(self, event: Input.Submitted) -> None:
        self.submit_line(event.value)

    def submit_line(self, text: str) -> None:
        """Enter on the command line: a filter, a console command, or a telecommand."""
        line = text.strip()
        if not line:
            return
        now = self.backend.now()
        if line.startswith("/"):
            self.history.add(line)
            self.telemetry.set_filter(line[1:])
            self._set_line("")
            self.action_tab(0)
            self._update_hint()
            return
        if line.startswith(":"):
            self.history.add(line)
            self._set_line("")
            self._console_command(line[1:].split(), now)
            self._update_hint()
            return
        v = validate(self.dictionary, line)
        if not v.ok:
            self._line_error = v.message or "nothing to send"
            self._update_hint()
            self.bell()
            return
        self.history.add(line)
        self._set_line("")
        self._update_hint()
        if v.hazardous:
            self.push_screen(ConfirmScreen(v, line), lambda ok: self._confirmed(v, line, bool(ok)))
        else:
            self.send_validated(v, line)

    def _confirmed(self, v: Validation, line: str, ok: bool) -> None:
        if ok:
            self.send_validated(v, line, confirmed=True)
        else:
            self.events.note(f"cancelled: {v.summary()} was not sent", self.backend.now(), "note", "pending")
            self.refresh_screen()
        self._q("#cmdline", CommandInput).focus()

    def send_validated(self, v: Validation, line: str, confirmed: bool = False) -> CommandEntry:
        """Send a validated command (a hazardous one only after its confirmation)."""
        assert v.command is not None and v.system is not None
        if v.hazardous and not confirmed:
            raise ValueError(f"{v.command.name} is hazardous and was not confirmed")
        now = self.backend.now()
        try:
            handle = self.backend.send(v.command.name, v.system, dict(v.args), v.target if v.hazardous else None,
                                       v.timeout)
        except (KeyError, ValueError, ConnectionError) as exc:
            msg = clean(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
            entry = self.commands.add(line, v.command.name, v.system, now, error=msg)
            self.events.note(f"not sent: {v.summary()}: {msg}", now, "note", "bad")
        else:
            entry = self.commands.add(line, v.command.name, v.system, now, handle)
            seq = getattr(handle, "seq_count", None)
            self.events.note(f"sent {v.summary()}" + (f" (seq {seq})" if seq is not None else ""), now)
            self.commands.update(entry, self.backend.status(handle))
        self.refresh_screen()
        return entry

    def _console_command(self, words: list[str], now: float) -> None:
        if not words:
            return
        cmd, rest = words[0].lower(), words[1:]
        sim = hasattr(self.backend, "inject")
        try:
            if cmd in ("q", "quit"):
                self.exit()
            elif cmd == "inject" and sim and len(rest) == 2:
                self.backend.inject(rest[0], rest[1])
                self.events.note(f"injected {rest[1]} into {rest[0].upper()}", now, "note", "dropped")
            elif cmd == "rate" and hasattr(self.backend, "set_rate") and len(rest) == 1:
                self.backend.set_rate(float(rest[0]))
            elif cmd in ("pause", "resume") and hasattr(self.backend, "set_paused"):
                self.backend.set_paused(cmd == "pause")
            else:
                self._line_error = (f"unknown console command :{clean(' '.join(words), 60)} (:inject UNIT FAULT, "
                                    ":rate X, :pause, :resume need --sim; :quit)")
        except (KeyError, ValueError) as exc:
            self._line_error = clean(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)

    # -- actions --------------------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_tab(self, index: int) -> None:
        self._q("#main", TabbedContent).active = TABS[index]
        self.refresh_screen()

    def action_leave_line(self) -> None:
        self.action_focus_pane("main")

    def action_focus_pane(self, which: str) -> None:
        if which == "events":
            self._q("#events", RichLog).focus()
        elif which == "commands":
            self._q("#commands", CommandPane).focus()
        else:
            active = self._q("#main", TabbedContent).active
            if active == "tab-tm":
                self._q("#params", ParamTable).focus()
            else:
                grids = self.grids.get({"tab-payloads": "payloads", "tab-deploy": "deploy",
                                        "tab-link": "link"}.get(active, ""), [])
                if grids:
                    grids[0].focus()

    def action_enter_line(self, prefix: str = "") -> None:
        inp = self._q("#cmdline", CommandInput)
        inp.focus()
        if prefix and not inp.value:
            self._set_line(prefix)
            self._update_hint()

    def action_sim_pause(self) -> None:
        if hasattr(self.backend, "set_paused"):
            self.backend.set_paused(not self.backend.paused)
            self.refresh_screen()

    def action_sim_rate(self, factor: float) -> None:
        if hasattr(self.backend, "set_rate"):
            self.backend.set_rate(min(1000.0, max(0.125, self.backend.rate * factor)))
            self.refresh_screen()
