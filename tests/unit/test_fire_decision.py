"""The deploy decisions as truth tables: every condition shown to decide the outcome on its own (MC/DC).

NPR 7150.2 asks for modified condition/decision coverage of safety-critical
decisions.  The ARM, FIRE and OVERRIDE decisions of the deploy manager are
pure functions of a record of booleans, so the tests here are truth tables:

* the MC/DC set: all conditions true (accept), and each condition false on its
  own (reject, with that condition's failure code); a checker then proves the
  set has, for every condition, an independence pair (two rows differing in
  that condition alone, with different outcomes);
* the whole truth table (2**n rows): accept exactly when every condition
  holds; the code is the first unmet condition's in priority order; the
  failure data names every unmet condition.

The expected codes are written out here, from docs/deploy.md, rather than
read from the implementation.
"""

from __future__ import annotations

import itertools
from dataclasses import fields
from typing import Any, Callable

import pytest

from fsw.core.deploy import (
    ARM_CONDITIONS, FIRE_CONDITIONS, OVERRIDE_CONDITIONS, ArmPrereqs, Decision, FirePrereqs, OverridePrereqs,
    arm_decision, fire_decision, override_decision,
)
from fsw.dictionary import load_dictionary

# The requirement: condition -> PUS-1 failure code, in priority order (docs/deploy.md, "Prerequisites").
FIRE_SPEC = [
    ("phase_allows", "PHASE_FORBIDS"),
    ("state_known", "STATE_UNKNOWN"),
    ("not_done", "ALREADY_DONE"),
    ("armed", "NOT_ARMED"),
    ("other_idle", "BUSY"),
    ("spacing_ok", "SPACING"),
    ("link_up", "LINK_DOWN"),
    ("tm_fresh", "TIMEOUT"),
    ("pdu_on", "INHIBIT_ACTIVE"),
    ("bus_relay_closed", "INHIBIT_ACTIVE"),
    ("arm_relay_closed", "INHIBIT_ACTIVE"),
    ("fire_switch_open", "FAULT_ACTIVE"),
    ("switches_closed", "FAULT_ACTIVE"),
    ("no_fault", "FAULT_ACTIVE"),
]
ARM_SPEC = [
    ("phase_allows", "PHASE_FORBIDS"),
    ("state_known", "STATE_UNKNOWN"),
    ("not_done", "ALREADY_DONE"),
    ("link_up", "LINK_DOWN"),
    ("tm_fresh", "TIMEOUT"),
    ("unit_idle", "BUSY"),
    ("other_idle", "BUSY"),
    ("spacing_ok", "SPACING"),
    ("inhibits_in_place", "FAULT_ACTIVE"),
    ("switches_closed", "FAULT_ACTIVE"),
    ("no_fault", "FAULT_ACTIVE"),
]
OVERRIDE_SPEC = [
    ("phase_allows", "PHASE_FORBIDS"),
    ("not_busy", "BUSY"),
    ("overridable", "WRONG_MODE"),
]

DECISIONS = [
    pytest.param(FirePrereqs, fire_decision, FIRE_SPEC, FIRE_CONDITIONS, id="fire"),
    pytest.param(ArmPrereqs, arm_decision, ARM_SPEC, ARM_CONDITIONS, id="arm"),
    pytest.param(OverridePrereqs, override_decision, OVERRIDE_SPEC, OVERRIDE_CONDITIONS, id="override"),
]


def row(cls: type, **false: bool) -> Any:
    """A prerequisites record with every condition true except those given."""
    values = {f.name: True for f in fields(cls)}
    values.update(false)
    return cls(**values)


def mcdc_rows(cls: type) -> list[Any]:
    """The unique-cause MC/DC set of an AND decision: all true, then each condition false alone."""
    names = [f.name for f in fields(cls)]
    return [row(cls)] + [row(cls, **{n: False}) for n in names]


def independence_pairs(cls: type, decide: Callable[[Any], Decision], rows: list[Any]) -> dict[str, tuple]:
    """For each condition, a pair of rows that differ only in it and whose outcomes differ."""
    names = [f.name for f in fields(cls)]
    found: dict[str, tuple] = {}
    for a, b in itertools.combinations(rows, 2):
        diff = [n for n in names if getattr(a, n) != getattr(b, n)]
        if len(diff) == 1 and decide(a).ok != decide(b).ok:
            found.setdefault(diff[0], (a, b))
    return found


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_conditions_are_the_specified_ones_in_priority_order(cls, decide, spec, impl) -> None:
    assert [f.name for f in fields(cls)] == [n for n, _ in spec], "record fields must follow the priority order"
    assert list(impl) == spec


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_every_reason_code_is_a_declared_failure_code(cls, decide, spec, impl) -> None:
    codes = load_dictionary().failure_codes.values
    for _, code in spec:
        assert code in codes


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_mcdc_all_conditions_met_accepts(cls, decide, spec, impl) -> None:
    d = decide(row(cls))
    assert d == Decision(True, None, (), 0)


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_mcdc_each_condition_alone_rejects_with_its_code(cls, decide, spec, impl) -> None:
    for i, (name, code) in enumerate(spec):
        d = decide(row(cls, **{name: False}))
        assert not d.ok, name
        assert d.code == code, name
        assert d.unmet == (name,), name
        assert d.mask == 1 << i, name


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_mcdc_set_has_an_independence_pair_for_every_condition(cls, decide, spec, impl) -> None:
    rows = mcdc_rows(cls)
    assert len(rows) == len(spec) + 1  # n + 1 rows suffice for an AND of n conditions
    pairs = independence_pairs(cls, decide, rows)
    assert set(pairs) == {n for n, _ in spec}
    for name, (a, b) in pairs.items():
        assert {decide(a).ok, decide(b).ok} == {True, False}


def test_the_checker_finds_a_missing_pair() -> None:
    """The MC/DC checker itself: without the row where only ``armed`` is false, ``armed`` has no pair."""
    rows = [r for r in mcdc_rows(FirePrereqs) if r != row(FirePrereqs, armed=False)]
    pairs = independence_pairs(FirePrereqs, fire_decision, rows)
    assert "armed" not in pairs and len(pairs) == len(FIRE_SPEC) - 1


@pytest.mark.parametrize("cls, decide, spec, impl", DECISIONS)
def test_full_truth_table(cls, decide, spec, impl) -> None:
    names = [n for n, _ in spec]
    n = len(names)
    accepted = 0
    for bits in range(1 << n):
        values = {name: not (bits >> i) & 1 for i, name in enumerate(names)}
        d = decide(cls(**values))
        unmet = [name for name in names if not values[name]]
        assert d.ok == (not unmet)
        if d.ok:
            accepted += 1
            assert d.code is None and d.unmet == () and d.mask == 0
        else:
            assert d.code == dict(spec)[unmet[0]]
            assert d.unmet == tuple(unmet)
            assert d.mask == bits
    assert accepted == 1  # exactly one row of 2**n fires


def test_no_single_fire_condition_can_be_dropped() -> None:
    """Each condition, held false, keeps the decision at reject whatever the others are (a sample of 4096)."""
    names = [n for n, _ in FIRE_SPEC]
    for name in names:
        others = [n for n in names if n != name]
        for bits in range(0, 1 << len(others), 2):  # every other combination: 4096 per condition
            values = {o: bool((bits >> i) & 1) for i, o in enumerate(others)}
            values[name] = False
            assert not fire_decision(FirePrereqs(**values)).ok


@pytest.mark.parametrize("cls", [FirePrereqs, ArmPrereqs, OverridePrereqs])
def test_only_real_booleans_are_accepted(cls) -> None:
    """A truthy non-bool (a current, a timestamp) must not pass for a met condition."""
    first = fields(cls)[0].name
    for bad in (1, 0.5, "yes", None, [True]):
        with pytest.raises(TypeError):
            row(cls, **{first: bad})


def test_decision_is_pure() -> None:
    p = row(FirePrereqs, spacing_ok=False, link_up=False)
    assert fire_decision(p) == fire_decision(p)
    assert p == row(FirePrereqs, spacing_ok=False, link_up=False)
