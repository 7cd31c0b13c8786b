"""Registration records: meter point numbers and supplier registrations."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.reference.mpxn import make_mpan, mpan_check_digit, mpan_problem, mprn_problem
from hub.reference.roles import Fuel
from hub.registers.registration import MeterPoint, SupplierRegistration


def test_a_known_mpan_passes_its_check_digit() -> None:
    # weights 3 5 7 13 17 19 23 29 31 37 41 43 over 120000000001 -> sum 3+10+43 = 56 % 11 = 1
    assert mpan_check_digit("120000000001") == 1
    assert mpan_problem("1200000000011") is None


def test_an_mpan_with_a_wrong_check_digit_is_refused() -> None:
    assert "check digit" in (mpan_problem("1200000000012") or "")


def test_an_mpan_outside_the_14_distribution_areas_is_refused() -> None:
    assert "distributor id" in (mpan_problem("2400000000000") or "")


@given(st.sampled_from([str(n) for n in range(10, 24)]), st.integers(0, 10**10 - 1))
def test_every_made_mpan_is_valid_and_any_changed_digit_is_caught_or_checked(
    area: str, serial: int
) -> None:
    mpan = make_mpan(area, serial)
    assert mpan_problem(mpan) is None
    bad = mpan[:12] + str((int(mpan[12]) + 1) % 10)
    assert mpan_problem(bad) is not None


def test_mprn_format_is_checked() -> None:
    assert mprn_problem("7000000001") is None
    assert mprn_problem("12345") is not None
    assert mprn_problem("0123456") is not None
    assert mprn_problem("12A4567") is not None


def test_overlapping_supplier_registrations_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        MeterPoint(
            "7000000001",
            Fuel.GAS,
            "NT",
            "CADENT",
            (
                SupplierRegistration("A", date(2020, 1, 1), date(2021, 1, 2)),
                SupplierRegistration("B", date(2021, 1, 1)),
            ),
        )


def test_only_electricity_meter_points_export() -> None:
    with pytest.raises(ValueError, match="export"):
        MeterPoint("7000000001", Fuel.GAS, "NT", "CADENT", (), export=True)
