"""The service catalogue against the facts table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.reference.catalogue import CATALOGUE, FutureDated, PriorityClass
from hub.reference.roles import Role

FACTS = Path(__file__).resolve().parents[2] / "shared" / "domain" / "service-catalogue.md"


def test_catalogue_holds_all_129_services() -> None:
    assert len(CATALOGUE) == 129


def test_evolved_smart_grid_services_are_present_but_out_of_scope() -> None:
    out = sorted(
        (s.code for s in CATALOGUE.values() if not s.in_scope),
        key=lambda c: [int(p) for p in c.split(".")],
    )
    assert out == ["6.14.1", "6.14.2", "6.14.3"] + [f"7.{n}" for n in range(5, 17)]


def test_only_suppliers_may_top_up_a_prepayment_meter() -> None:
    assert CATALOGUE["2.2"].roles == {Role.IS, Role.GS}


def test_retired_opt_out_and_opt_in_go_to_the_supplier() -> None:
    assert CATALOGUE["8.5"].roles == CATALOGUE["8.6"].roles == {Role.IS, Role.GS}


def test_device_services_name_their_device_types_and_non_device_ones_none() -> None:
    for s in CATALOGUE.values():
        assert bool(s.device_types) is not s.non_device, s.code


def test_top_ups_and_supply_operations_outrank_bulk_firmware() -> None:
    assert CATALOGUE["2.2"].priority < CATALOGUE["4.1.1"].priority < CATALOGUE["11.1"].priority
    assert CATALOGUE["7.2"].priority is PriorityClass.URGENT


def test_json_form_carries_the_fields_tools_rely_on() -> None:
    j = CATALOGUE["6.23"].to_json()
    for key in (
        "code",
        "name",
        "roles",
        "critical",
        "on_demand",
        "future_dated",
        "schedulable",
        "non_device",
        "in_scope",
    ):
        assert key in j
    assert j["future_dated"] == FutureDated.DSP_AND_DEVICE.value


def _facts() -> list[list[str]]:
    text = FACTS.read_text()
    rows = []
    for line in re.sub(r"\s*\n\n\(", " (", text).splitlines():
        if re.match(r"^\| \d", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.skipif(not FACTS.exists(), reason="shared facts table not beside this checkout")
def test_every_service_matches_the_facts_table() -> None:
    rows = _facts()
    assert len(rows) == 129
    fd = {
        "-": FutureDated.NONE,
        "DSP": FutureDated.DSP,
        "Device": FutureDated.DEVICE,
        "DSP & Device": FutureDated.DSP_AND_DEVICE,
    }
    for code, _name, crit, od, fdated, sched, nd, roles in rows:
        s = CATALOGUE[code]
        assert s.critical == (crit == "Y"), code
        assert s.on_demand == (od == "Y"), code
        assert s.future_dated is fd[fdated], code
        assert s.schedulable == (sched == "Y"), code
        assert s.non_device == (nd == "Y"), code
        if not roles.startswith("(none"):
            assert s.roles == {Role(r.strip()) for r in roles.split(",")}, code
