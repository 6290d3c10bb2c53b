"""Scenario files: times, step kinds, and errors that name the step."""

from __future__ import annotations

import pytest

from fsw.dictionary import load_dictionary
from ground.scenario import ScenarioError, parse_offset, parse_scenario

D = load_dictionary()


@pytest.mark.parametrize("text, seconds", [
    ("L+0", 0.0), ("L+1h", 3600.0), ("L+1d+2h+30m+5s", 86400 + 7200 + 1800 + 5), ("L-1h", -3600.0),
    ("90m", 5400.0), (12, 12.0), ("L+0.5d", 43200.0),
])
def test_offsets(text, seconds) -> None:
    assert parse_offset(text) == seconds


@pytest.mark.parametrize("text", ["L*1h", "1y", "L+", "tomorrow", "L+1h-2m", True])
def test_bad_offsets(text) -> None:
    with pytest.raises(ScenarioError):
        parse_offset(text)


def test_reference_scenario_parses_with_criteria() -> None:
    from fsw.io.library import onboard_library  # noqa: F401 - the package data is there
    from importlib import resources
    text = (resources.files("fsw.missions") / "reference" / "scenario.yaml").read_text()
    s = parse_scenario(text, D)
    assert s.start < 0 < s.end
    assert len(s.criteria) >= 15
    kinds = {st.kind for st in s.steps}
    assert {"send", "wait", "schedule", "note"} <= kinds
    assert all(a.at <= b.at for a, b in zip(s.steps, s.steps[1:]))


def _one(step: str, extra: str = "") -> str:
    return f"scenario: t\nend: L+1d\n{extra}steps:\n  - {step}\n"


@pytest.mark.parametrize("step, words", [
    ("{at: L+1h, send: NO_SUCH_CMD}", ["step 1", "NO_SUCH_CMD"]),
    ("{at: L+1h, send: FSS_SET_MODE, args: {mode: FLYING}}", ["step 1", "mode"]),
    ("{at: L+1h, send: DEPLOY_ARM, args: {unit: ALPINE}}", ["step 1", "hazardous", "confirm"]),
    ("{at: L+1h, wait: 'NOT_A_PARAM == 3'}", ["step 1", "NOT_A_PARAM"]),
    ("{at: L+1h, wait: 'FSS_MODE is SCIENCE'}", ["step 1", "PARAM == VALUE"]),
    ("{at: L+1h, send: PING, phase: CRUISE}", ["step 1", "exactly one"]),
    ("{send: PING}", ["step 1", "at"]),
    ("{at: L+1h, send: PING, colour: red}", ["step 1", "colour"]),
    ("{at: L+1h, schedule: PING}", ["step 1", "release"]),
    ("{at: L+1h, schedule: PING, release: L+30m}", ["step 1", "after"]),
    ("{at: L+1h, send: PING, expect: maybe}", ["step 1", "expect"]),
    ("{at: L+2d, send: PING}", ["end comes before"]),
])
def test_bad_steps_name_the_step(step, words) -> None:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(_one(step), D, "bad.yaml")
    msg = str(e.value)
    assert msg.startswith("bad.yaml")
    for w in words:
        assert w in msg, msg


def test_steps_must_be_in_time_order() -> None:
    text = "scenario: t\nend: L+1d\nsteps:\n  - {at: L+2h, send: PING}\n  - {at: L+1h, send: PING}\n"
    with pytest.raises(ScenarioError, match="step 2"):
        parse_scenario(text, D)


def test_instance_parameters_and_schedule_steps() -> None:
    text = ("scenario: t\nstart: L-1h\nend: L+1d\nsteps:\n"
            "  - {at: L-30m, schedule: SET_PHASE, release: L+0, args: {phase: LAUNCH}, expect: none}\n"
            "  - {at: L+1h, wait: 'DEP_STATE@ALPINE == SAFE', timeout: 5m, criterion: alpine safe}\n")
    s = parse_scenario(text, D)
    assert s.steps[0].kind == "schedule" and s.steps[0].release == 0.0 and s.steps[0].expect == "none"
    assert str(s.steps[1].condition) == "DEP_STATE@ALPINE == SAFE" and s.criteria == [s.steps[1]]
