"""The unit models' timers that need not run, and their per-packet work done once.

In simulated time every timer firing is a step of the runner, so a timer
that fires without effect costs as much as one that reports.  A disabled
housekeeping structure therefore has no timer running: HK_DISABLE cancels
it, HK_ENABLE resumes it on its grid (the slots it would have had had it
run all along), HK_SET_PERIOD while disabled moves the grid but leaves it
disabled, and a power cycle keeps the enabled state.  On the line nothing
changes: a reference model whose timers always run and which drops the
reports of a disabled structure sends the same bytes at the same times.

The timer tests drive a model in simulated time through a probe standing in
for the flight software, on an instantaneous line unless said otherwise: no
sleeps, and a report arrives when it is sent.

The payload models work out once what they used to work out for every
packet (which channels a packet carries, the random draws of a block in one
call, the spectra of every product in one array): the science they send is
the same numbers, checked against the packet computed the old way.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.core.clock import SimClock
from fsw.core.node import Node
from fsw.core.simrunner import SimRunner
from fsw.dictionary import load_dictionary
from fsw.protocol.pus import PusTc, PusTm, parse_packet
from hw_sim.models import make_model
from hw_sim.models.lusee import LuseeModel
from hw_sim.models.unit import LINE, UnitFailure, UnitModel
from tests.conftest import examples

D = load_dictionary()


class Probe(Node):
    """Stands in for the flight software on one unit's line: sends telecommands, records what comes back."""

    def __init__(self, system: str) -> None:
        super().__init__("probe", ["unit"])
        self.system = system
        self.seq = 0
        self.rx: list[tuple[float, bytes]] = []

    def on_packet(self, port: str, packet: bytes, now: float) -> None:
        self.rx.append((now, packet))

    def tc(self, name: str, **args: Any) -> None:
        cmd = D.command(name, self.system)
        self.send_packet("unit", PusTc(cmd.apid, cmd.service, cmd.subservice, D.encode_command(cmd, args),
                                       seq_count=self.seq).pack())
        self.seq += 1

    def hk_times(self, since: float = -math.inf) -> list[float]:
        out = []
        for t, raw in self.rx:
            pkt = parse_packet(raw)
            if isinstance(pkt, PusTm) and (pkt.service, pkt.subservice) == (3, 25) and t >= since:
                out.append(t)
        return out


class Rig:
    """A unit and its probe; the line is instantaneous unless paced at the unit's baud."""

    def __init__(self, system: str, model: UnitModel | None = None, seed: int = 1, paced: bool = False) -> None:
        self.model = model or make_model(D, D.system(system), random.Random(seed))
        self.probe = Probe(system)
        self.runner = SimRunner(SimClock(0.0))
        self.runner.add(self.probe)
        self.runner.add(self.model)
        self.runner.connect(self.probe, "unit", self.model, LINE, baud=D.system(system).baud if paced else None)

    def until(self, t: float) -> None:
        self.runner.run_until(t)

    def tc(self, name: str, at: float, **args: Any) -> None:
        """Send a telecommand at ``at`` (delivered, and carried out, at that instant)."""
        self.until(at)
        self.probe.tc(name, **args)
        self.until(at)

    def next_deadline(self) -> float:
        return self.model.next_deadline()


def approx_list(xs: list[float]) -> list[float]:
    return [round(x, 9) for x in xs]


def test_hk_disable_stops_the_timer_and_enable_resumes_it_on_its_grid() -> None:
    # a deploy unit: always powered, booted after 0.5 s, its status a second apart; on the surface the flight
    # software disables it, and then nothing of the unit may wake the runner
    r = Rig("ALPINE")
    r.until(3.2)
    assert approx_list(r.probe.hk_times()) == [0.5, 1.5, 2.5]
    r.tc("HK_DISABLE", 3.2, sid=1)
    assert r.next_deadline() == math.inf and len(r.model.timers) == 0
    steps = r.runner.steps
    r.until(1000.0)
    assert r.probe.hk_times(3.2) == [] and r.runner.steps == steps   # not one step for 17 min of silence
    r.tc("HK_ENABLE", 1000.2, sid=1)
    assert r.next_deadline() == 1000.5                               # the grid of the boot: 0.5 + k
    r.until(1002.6)
    assert approx_list(r.probe.hk_times(1000.2)) == [1000.5, 1001.5, 1002.5]
    # enabling a structure that runs, or disabling one twice, changes nothing
    r.tc("HK_ENABLE", 1002.7, sid=1)
    r.until(1003.6)
    assert approx_list(r.probe.hk_times(1002.6)) == [1003.5]


def test_set_period_while_disabled_keeps_it_disabled_and_moves_its_grid() -> None:
    r = Rig("ALPINE")
    r.tc("HK_DISABLE", 3.2, sid=1)
    r.tc("HK_SET_PERIOD", 4.0, sid=1, period_ms=2000)
    assert r.next_deadline() == math.inf and len(r.model.timers) == 0
    r.until(7.3)
    assert r.probe.hk_times(3.2) == []
    r.tc("HK_ENABLE", 7.3, sid=1)
    r.until(12.5)
    assert approx_list(r.probe.hk_times(3.2)) == [8.0, 10.0, 12.0]   # the new grid: 4.0 + 2.0 * k


def test_enable_at_a_slot_reports_at_it_once() -> None:
    r = Rig("ALPINE")
    r.tc("HK_DISABLE", 3.2, sid=1)
    r.tc("HK_ENABLE", 5.5, sid=1)        # at the instant of a slot: enabled in time for it
    r.until(6.6)
    assert approx_list(r.probe.hk_times(3.2)) == [5.5, 6.5]
    r.tc("HK_DISABLE", 7.5, sid=1)       # at a slot whose report already went (the probe ran to 7.5 first) ...
    r.tc("HK_ENABLE", 7.5, sid=1)        # ... it is not sent again
    r.until(8.6)
    assert approx_list(r.probe.hk_times(6.6)) == [7.5, 8.5]


def test_power_cycles_keep_the_enabled_state() -> None:
    r = Rig("LISTER")                    # boots in 3 s; no other timer while it idles
    r.until(5.0)
    assert approx_list(r.probe.hk_times()) == [3.0, 4.0, 5.0]
    r.tc("HK_DISABLE", 5.5, sid=1)
    r.model.set_power(False, 6.0)
    r.model.set_power(True, 7.0)         # boots at 10.0
    r.until(20.0)
    assert r.probe.hk_times(5.5) == [] and r.next_deadline() == math.inf and r.model.answering(20.0)
    r.tc("HK_ENABLE", 20.5, sid=1)
    r.until(23.0)
    assert approx_list(r.probe.hk_times(5.5)) == [21.0, 22.0, 23.0]   # on the grid of the boot at 10.0
    # enabled, a structure reports from the boot on, at its declared period again
    r.tc("HK_SET_PERIOD", 23.5, sid=1, period_ms=5000)
    r.model.set_power(False, 24.0)
    r.model.set_power(True, 25.0)
    r.until(30.5)
    assert approx_list(r.probe.hk_times(23.5)) == [28.0, 29.0, 30.0]


def test_hk_commands_for_an_unknown_structure_fail() -> None:
    r = Rig("ALPINE")
    r.until(1.0)
    cmd = D.command("HK_DISABLE", "ALPINE")
    tc = PusTc(cmd.apid, cmd.service, cmd.subservice, D.encode_command(cmd, {"sid": 7}))
    try:
        r.model.execute(cmd, {"sid": 7}, tc, 1.0)
    except UnitFailure as exc:
        assert exc.code == "UNKNOWN_ID"
    else:
        raise AssertionError("HK_DISABLE of an unknown structure accepted")
    assert r.next_deadline() == 1.5


class AlwaysRunning(UnitModel):
    """The reference: housekeeping timers run all the time; a disabled structure's reports are dropped when due."""

    def _booted(self, now: float, gen: int | None = None) -> None:
        super()._booted(now, gen)
        for timer in self._hk_timers.values():
            timer.resume(now)

    def execute(self, cmd: Any, args: dict, tc: PusTc, now: float) -> float | None:
        if cmd.name in ("HK_ENABLE", "HK_DISABLE", "HK_SET_PERIOD"):
            timer = self._hk_timers.get(args["sid"])
            if timer is None:
                raise UnitFailure("UNKNOWN_ID", data=args["sid"])
            if cmd.name == "HK_SET_PERIOD":
                timer.set_period(args["period_ms"] / 1000.0, now)
            else:
                self._hk_enabled[args["sid"]] = cmd.name == "HK_ENABLE"
            return None
        return super().execute(cmd, args, tc, now)

    def _send_hk(self, pkt: Any, now: float) -> None:
        if self._hk_enabled.get(pkt.sid, True):
            super()._send_hk(pkt, now)


# on a coarse grid of times and periods, so that commands often fall on a report's slot, or together
ACTIONS = st.lists(st.tuples(st.one_of(st.integers(0, 16).map(lambda k: k * 0.25), st.floats(0.0, 4.0)),
                             st.sampled_from(["enable", "disable", "period", "off", "on"]),
                             st.sampled_from([250, 500, 1000, 1500, 2000, 1234])), max_size=14)


@settings(max_examples=examples(40))
@given(ACTIONS, st.integers(0, 2**16))
def test_the_line_carries_what_it_carried_when_disabled_timers_ran(actions: list, seed: int) -> None:
    # a generic unit (its housekeeping drawn with noise from the seeded generator), commanded over its paced
    # line and power-cycled the same way as the reference: the same bytes at the same times, in fewer steps.
    # (An enable that arrives at the very instant of a slot reports at that slot; the reference did so too,
    # unless its timer had run at that instant before the command came: only an instantaneous line can
    # deliver a command then, as the tests above do.)
    system = D.system("LMS")
    rigs = [Rig("LMS", cls(D, system, random.Random(seed)), paced=True) for cls in (UnitModel, AlwaysRunning)]
    t = 0.0
    for dt, action, ms in actions:
        t += dt
        for r in rigs:
            if action == "off":
                r.until(t)
                r.model.set_power(False, t)
            elif action == "on":
                r.until(t)
                r.model.set_power(True, t)
            elif action == "period":
                r.tc("HK_SET_PERIOD", t, sid=1, period_ms=ms)
            else:
                r.tc("HK_ENABLE" if action == "enable" else "HK_DISABLE", t, sid=1)
    for r in rigs:
        r.until(t + 10.0)
    new, ref = rigs
    assert new.probe.rx == ref.probe.rx
    assert new.runner.steps <= ref.runner.steps


def test_lusee_integrates_only_in_science() -> None:
    # outside SCIENCE the spectrometer's integration timer does not run (it did nothing there)
    r = Rig("LUSEE")
    m = r.model
    assert isinstance(m, LuseeModel)
    r.until(5.0)
    assert m.mode == "ANALOG" and m._timer is None
    r.tc("LUSEE_SET_INTEGRATION", 5.0, integration_ms=500)
    assert m._timer is None
    r.tc("LUSEE_SET_MODE", 5.2, mode="SCIENCE")
    assert m._timer is not None and m._timer.next_time == 5.7
    r.until(6.8)
    assert m.integrations == 3                       # at 5.7, 6.2 and 6.7
    r.tc("LUSEE_SET_MODE", 6.9, mode="ON")
    assert m._timer is None
    r.until(9.0)
    assert m.integrations == 3
    r.tc("LUSEE_SET_MODE", 9.05, mode="SCIENCE")     # a fresh integration from entering SCIENCE
    r.until(9.6)
    assert m.integrations == 4 and m.spectra == 4 * len(m.products)


# -- per-packet work done once: the same numbers as computed afresh for every packet ------------------------
def _capture(model: UnitModel) -> list[dict]:
    """Replace the model's science output by a list of the values it would send."""
    out: list[dict] = []
    model.send_science = lambda pkt, values, now: out.append(dict(values)) or True  # type: ignore[method-assign]
    return out


def _lms_tick_reference(m: Any, now: float) -> None:
    """The LMS science packet drawn block by block, as the model did before it drew a packet in one go."""
    n = m.system.name
    mask = m.dipoles()
    rng = m.noise
    b = m.b[:, None] * m._decay + rng.normal(0.0, 0.4, (3, m.n)) @ m._walk
    m.b = b[:, -1].copy()
    zero = [0.0] * m.n
    chans = {"E1": (8.0 * b[1] + rng.normal(0.0, 0.5, m.n)).tolist() if mask & 1 else zero,
             "E2": (-8.0 * b[0] + rng.normal(0.0, 0.5, m.n)).tolist() if mask & 2 else zero}
    chans.update(zip(("BX", "BY", "BZ"), (b + rng.normal(0.0, 0.02, b.shape)).tolist() if mask & 4 else [zero] * 3))
    values = {f"{n}_{k}": v for k, v in chans.items()}
    values[f"{n}_SCI_FIRST"] = m.sample_index
    values[f"{n}_DIPOLES"] = mask
    m.sample_index += m.n
    m.send_science(m.fields_pkt, values, now)


def test_lms_packets_are_the_numbers_drawn_block_by_block() -> None:
    models = [make_model(D, D.system("LMS"), random.Random(9)) for _ in range(2)]
    outs = [_capture(m) for m in models]
    for m in models:
        m.start(0.0)
        m.run_due(3.0)
        m.mode = "SCIENCE"
    t = 3.0
    for deployed in ([], ["ELECTRODE_1", "ELECTRODE_2"], ["MAST"], ["ELECTRODE_3", "ELECTRODE_4"],
                     ["ELECTRODE_1", "ELECTRODE_2", "ELECTRODE_3", "ELECTRODE_4", "MAST"]):
        for _ in range(3):
            t += 1.0
            for m in models:
                m.deployed = set(deployed)
            models[0]._tick(t)
            _lms_tick_reference(models[1], t)
    assert outs[0] == outs[1] and len(outs[0]) == 15
    assert outs[0][3]["LMS_DIPOLES"] == 1 and outs[0][3]["LMS_E2"] == [0.0] * 20 != outs[0][3]["LMS_E1"]


def test_lusee_spectra_are_the_numbers_computed_product_by_product() -> None:
    m = make_model(D, D.system("LUSEE"), random.Random(4))
    assert isinstance(m, LuseeModel)
    out = _capture(m)
    m.start(0.0)
    m.run_due(4.0)
    m.mode = "SCIENCE"
    state = m.noise.bit_generator.state
    m._integrated(5.0)
    m.noise.bit_generator.state = state
    noise = m.noise.standard_normal((len(m.products), m.channels))
    rel = 1.0 / math.sqrt((m.freqs[1] - m.freqs[0]) * 1e6 * m.integration_ms / 1000.0)
    for k, product in enumerate(m.products):
        scale = 2.0e9 * (0.3 if product.startswith("CROSS") else 1.0) * (1.0 + 0.02 * k)
        expected = [int(max(0.0, x)) for x in scale * m._sky * (1.0 + rel * noise[k])]
        assert out[k]["LUSEE_PRODUCT_ID"] == product and out[k]["LUSEE_POWER"] == expected


def test_fss_moonquake_in_blocks_within_and_across_its_ends() -> None:
    m = make_model(D, D.system("FSS"), random.Random(2))
    m.noise_counts = 0.0                      # the signal alone
    onset, amp = 1000.25, 5000.0
    for first in (999.8, 1000.5, 1100.0, 1300.0):   # across the onset, within, within, across the end
        m._quake = (onset, amp)
        t = first + m.vbb.offsets
        got = m._signal(t)[0]
        for ti, g in zip(t, got):
            dt = ti - onset
            want = 300.0 * math.sin(ti * 2 * math.pi / 3600.0)
            if 0 <= dt <= 300:
                want += amp * math.exp(-dt / 60.0) * math.sin(2 * math.pi * 1.3 * dt)
            assert abs(g - want) < 1e-6
    assert m._quake is None                   # the block past its end ended the burst


def test_hk_values_follow_effects_modes_and_power_cycles() -> None:
    # the generic model of LuSEE: its report's sources are chosen once, and read the unit's state at each report
    system = D.system("LUSEE")
    r = Rig("LUSEE", UnitModel(D, system, random.Random(6)))
    m, pkt = r.model, system.packet("LUSEE_HK")
    r.until(5.0)
    v = m.hk_values(pkt, 5.0)
    assert v["LUSEE_MODE"] == "ANALOG" and v["LUSEE_INTEGRATION"] == 1000.0 and v["LUSEE_TX_DROPS"] == 0
    assert -20.0 <= v["LUSEE_TEMP_ADC"] <= 50.0 and v["LUSEE_TEMP_ADC"] != m.hk_values(pkt, 5.0)["LUSEE_TEMP_ADC"]
    r.tc("LUSEE_SET_INTEGRATION", 5.5, integration_ms=250)
    r.tc("LUSEE_SET_MODE", 5.6, mode="ON")
    v = m.hk_values(pkt, 6.0)
    assert v["LUSEE_INTEGRATION"] == 250 and v["LUSEE_MODE"] == "ON"
    m.set_power(False, 7.0)
    m.set_power(True, 8.0)
    r.until(13.0)
    v = m.hk_values(pkt, 13.0)
    assert v["LUSEE_INTEGRATION"] == 1000.0 and v["LUSEE_MODE"] == "ANALOG"   # set values do not outlive power
    assert m.param_value(pkt.param("LUSEE_MODE"), 13.0) == "ANALOG"
