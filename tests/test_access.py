"""Access control: every refusal code, every relation, and the role x service matrix."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.policies.access import Relation
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.parties import User
from hub.reference.roles import DeviceType, Role
from hub.registers.inventory import DeviceStatus
from hub.registers.registration import Consent
from tests.world import (
    CHF,
    COS_DAY,
    COT_DAY,
    ESME,
    GPF,
    GSME,
    MPAN,
    ND_ESME,
    PPMID,
    World,
    at,
)

BEFORE_COS = at(COS_DAY - timedelta(days=1))
AFTER_COS = at(COS_DAY)


@pytest.fixture
def world() -> World:
    return World()


def test_registered_supplier_may_read_its_electricity_meter(world: World) -> None:
    d = world.ask("u-supa", Role.IS, "4.1.1", ESME, BEFORE_COS)
    assert d.code is ResponseCode.I99
    assert d.relation is Relation.REGISTERED_SUPPLIER


def test_unknown_user_is_refused_with_e1(world: World) -> None:
    assert world.ask("u-nobody", Role.IS, "4.1.1", ESME, BEFORE_COS).code is ResponseCode.E1


def test_user_acting_in_a_role_it_does_not_hold_is_refused_with_e1(world: World) -> None:
    assert world.ask("u-supa", Role.ED, "4.1.1", ESME, BEFORE_COS).code is ResponseCode.E1


def test_suspended_user_is_refused_with_e3(world: World) -> None:
    assert world.ask("u-gone", Role.IS, "4.1.1", ESME, BEFORE_COS).code is ResponseCode.E3


def test_network_operator_cannot_top_up_a_prepayment_meter(world: World) -> None:
    d = world.ask("u-ukpn", Role.ED, "2.2", ESME, BEFORE_COS)
    assert d.code is ResponseCode.E2
    assert "ED may not send 2.2" in d.reason


def test_unknown_service_is_refused_with_e12(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "99.9", ESME, BEFORE_COS).code is ResponseCode.E12


def test_device_service_without_a_device_is_refused_with_e12(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "4.1.1", None, BEFORE_COS).code is ResponseCode.E12


def test_evolved_smart_grid_service_is_refused_as_out_of_scope(world: World) -> None:
    d = world.ask("u-supa", Role.IS, "7.5", ESME, BEFORE_COS)
    assert d.code is ResponseCode.H5
    assert "outside the hub's scope" in d.reason


def test_unknown_device_is_refused_with_e19(world: World) -> None:
    d = world.ask("u-supa", Role.IS, "4.1.1", "FFFFFFFFFFFFFFFF", BEFORE_COS)
    assert d.code is ResponseCode.E19


def test_gas_only_service_to_an_electricity_meter_is_refused_with_e11(world: World) -> None:
    assert world.ask("u-supa", Role.GS, "4.1.4", ESME, BEFORE_COS).code is ResponseCode.E11


def test_chf_service_to_a_meter_is_refused_with_e11(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "6.28", ESME, BEFORE_COS).code is ResponseCode.E11


def test_decommissioned_device_is_refused_with_e5(world: World) -> None:
    world.set_status(ESME, DeviceStatus.DECOMMISSIONED)
    d = world.ask("u-supa", Role.IS, "4.1.1", ESME, BEFORE_COS)
    assert d.code is ResponseCode.E5
    assert "Decommissioned" in d.reason


def test_commissioning_needs_an_installed_not_commissioned_device(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "8.1.1", ESME, BEFORE_COS).code is ResponseCode.E5
    world.set_status(ESME, DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    assert world.ask("u-supa", Role.IS, "8.1.1", ESME, BEFORE_COS).code is ResponseCode.I99


def test_other_supplier_is_refused_with_e4(world: World) -> None:
    d = world.ask("u-supb", Role.IS, "4.1.1", ESME, BEFORE_COS)
    assert d.code is ResponseCode.E4
    assert COS_DAY.isoformat() not in d.reason


def test_change_of_supplier_moves_access_on_the_effective_date(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "4.1.1", ESME, BEFORE_COS).accepted
    assert not world.ask("u-supb", Role.IS, "4.1.1", ESME, BEFORE_COS).accepted
    assert not world.ask("u-supa", Role.IS, "4.1.1", ESME, AFTER_COS).accepted
    assert world.ask("u-supb", Role.IS, "4.1.1", ESME, AFTER_COS).accepted


def test_future_dated_request_executing_after_change_of_supplier_belongs_to_gaining_supplier(
    world: World,
) -> None:
    # submitted before the change, executing after it: judged on the execution day
    execute_at = at(COS_DAY + timedelta(days=2))
    assert world.ask("u-supb", Role.IS, "1.1.1", ESME, execute_at).accepted
    assert world.ask("u-supa", Role.IS, "1.1.1", ESME, execute_at).code is ResponseCode.E4


def test_registration_day_is_the_uk_day_not_the_utc_day(world: World) -> None:
    # 23:30 UTC on the eve of the change is 00:30 BST on the change day
    eve = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)
    assert world.ask("u-supb", Role.IS, "4.1.1", ESME, eve).accepted
    assert not world.ask("u-supa", Role.IS, "4.1.1", ESME, eve).accepted


def test_future_supplier_may_read_inventory_before_its_registration_starts(world: World) -> None:
    d = world.ask("u-supb", Role.IS, "8.2", ESME, BEFORE_COS)
    assert d.code is ResponseCode.I99
    assert d.relation is Relation.FUTURE_SUPPLIER


def test_gas_supplier_acts_on_gas_meter_not_as_import_supplier(world: World) -> None:
    assert world.ask("u-supa", Role.GS, "4.1.1", GSME, BEFORE_COS).accepted
    assert world.ask("u-supa", Role.IS, "4.1.1", GSME, BEFORE_COS).code is ResponseCode.E4


def test_export_supplier_acts_only_on_export_meter_points(world: World) -> None:
    assert world.ask("u-expo", Role.ES, "4.2", "00000000000000E7", BEFORE_COS).accepted
    assert world.ask("u-expo", Role.ES, "4.2", ESME, BEFORE_COS).code is ResponseCode.E4


def test_network_operator_reads_inside_its_area_only(world: World) -> None:
    d = world.ask("u-ukpn", Role.ED, "4.1.1", ESME, BEFORE_COS)
    assert d.accepted
    assert d.relation is Relation.NETWORK_OPERATOR
    assert world.ask("u-nged", Role.ED, "4.1.1", ESME, BEFORE_COS).code is ResponseCode.E4


def test_gas_transporter_reads_gas_meters_on_its_network(world: World) -> None:
    assert world.ask("u-cadent", Role.GT, "4.1.1", GSME, BEFORE_COS).accepted


def test_appointed_agent_may_read_while_appointed_by_the_registered_supplier(world: World) -> None:
    d = world.ask("u-agent", Role.RSA, "6.2.7", ESME, BEFORE_COS)
    assert d.relation is Relation.APPOINTED_AGENT
    # after the change of supplier the appointing supplier is no longer registered
    assert world.ask("u-agent", Role.RSA, "6.2.7", ESME, AFTER_COS).code is ResponseCode.E4


def test_agent_may_not_send_a_service_that_changes_anything(world: World) -> None:
    d = world.ask("u-agent", Role.RSA, "8.4", ESME, BEFORE_COS)
    assert d.code is ResponseCode.E2
    assert "read-only" in d.reason


def test_esco_consent_ends_at_change_of_tenancy(world: World) -> None:
    before = at(COT_DAY - timedelta(days=1))
    d = world.ask("u-esco", Role.OU, "4.8.1", ESME, before)
    assert d.relation is Relation.CONSENTED_ESCO
    assert world.ask("u-esco", Role.OU, "4.8.1", ESME, at(COT_DAY)).code is ResponseCode.E4


def test_non_domestic_meter_point_not_opted_in_is_refused_with_its_own_code(world: World) -> None:
    d = world.ask("u-supa", Role.IS, "4.1.1", ND_ESME, BEFORE_COS)
    assert d.code is ResponseCode.H6
    assert "non-domestic" in d.reason


def test_comms_hub_services_are_judged_on_the_sites_meter_points(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "6.30", CHF, BEFORE_COS).accepted
    assert world.ask("u-supb", Role.IS, "6.30", CHF, BEFORE_COS).code is ResponseCode.E4


def test_gas_proxy_is_judged_on_the_gas_meter_point_only(world: World) -> None:
    assert world.ask("u-supa", Role.GS, "6.13", GPF, BEFORE_COS).accepted
    assert world.ask("u-supb", Role.IS, "6.13", GPF, AFTER_COS).code is ResponseCode.E4


def test_prepayment_display_joins_are_judged_on_the_site(world: World) -> None:
    assert world.ask("u-supa", Role.IS, "8.7.2", PPMID, BEFORE_COS).accepted


def test_non_device_service_without_target_needs_only_the_role(world: World) -> None:
    d = world.ask("u-ukpn", Role.ED, "12.1", None, BEFORE_COS)
    assert d.code is ResponseCode.I99
    assert d.relation is Relation.NONE_NEEDED


# ---- role x service matrix against the catalogue ---------------------------------------

_DEVICE_FOR_TYPE = {
    DeviceType.ESME: ESME,
    DeviceType.GSME: GSME,
    DeviceType.CHF: CHF,
    DeviceType.GPF: GPF,
    DeviceType.PPMID: PPMID,
    DeviceType.IHD: "0000000000000005",
}


@pytest.mark.parametrize("code", list(CATALOGUE))
def test_every_role_is_refused_exactly_the_services_the_catalogue_denies_it(code: str) -> None:
    world = World()
    world.users["u-all"] = User("u-all", "SUPA", "All roles", frozenset(Role))
    service = CATALOGUE[code]
    device = None if service.non_device else _DEVICE_FOR_TYPE[min(service.device_types)]
    for role in Role:
        d = world.ask("u-all", role, code, device, BEFORE_COS)
        if not service.in_scope:
            assert d.code is ResponseCode.H5
            continue
        eligible = role in service.roles and (role is not Role.RSA or service.read_only)
        assert (d.code is ResponseCode.E2) is not eligible, (role, d)


# ---- properties ------------------------------------------------------------------------

_days = st.dates(min_value=date(2019, 1, 1), max_value=date(2028, 12, 31))
_readable = [s.code for s in CATALOGUE.values() if s.in_scope and not s.non_device]


@settings(max_examples=300, deadline=None)
@given(
    user=st.sampled_from(sorted(set(World().users) - {"u-gone"})),
    role=st.sampled_from(list(Role)),
    service=st.sampled_from(_readable),
    device=st.sampled_from([ESME, GSME, CHF, GPF, PPMID, "00000000000000E7"]),
    day=_days,
)
def test_no_user_is_ever_accepted_without_a_relation_on_that_day(
    user: str, role: Role, service: str, device: str, day: date
) -> None:
    world = World()
    d = world.ask(user, role, service, device, at(day))
    if not d.accepted:
        return
    assert d.mpxn is not None
    mp = world.registration.meter_points[d.mpxn]
    party = world.users[user].party_id
    relation_holds = {
        Relation.REGISTERED_SUPPLIER: mp.supplier_on(day) == party,
        Relation.FUTURE_SUPPLIER: mp.is_future_supplier(party, day),
        Relation.NETWORK_OPERATOR: mp.network_operator == party,
        Relation.APPOINTED_AGENT: world.registration.agent_appointed(party, mp.mpxn, day),
        Relation.CONSENTED_ESCO: world.registration.consent_live(party, mp.mpxn, day),
    }
    assert d.relation is not None
    assert relation_holds[d.relation]


@settings(max_examples=200, deadline=None)
@given(cos=_days, probe=_days)
def test_change_of_supplier_moves_access_on_exactly_the_effective_date(
    cos: date, probe: date
) -> None:
    world = World()
    mp = world.registration.meter_points[MPAN]
    regs = (
        replace(mp.registrations[0], effective_to=cos),
        replace(mp.registrations[1], effective_from=cos),
    )
    if cos <= regs[0].effective_from:
        return
    world.registration.meter_points[MPAN] = replace(mp, registrations=regs)
    losing = world.ask("u-supa", Role.IS, "4.1.1", ESME, at(probe)).accepted
    gaining = world.ask("u-supb", Role.IS, "4.1.1", ESME, at(probe)).accepted
    assert losing == (regs[0].effective_from <= probe < cos)
    assert gaining == (probe >= cos)


@settings(max_examples=200, deadline=None)
@given(granted=_days, cot=_days, probe=_days)
def test_consent_ends_at_the_first_change_of_tenancy_after_it_was_given(
    granted: date, cot: date, probe: date
) -> None:
    world = World()
    mp = world.registration.meter_points[MPAN]
    world.registration.meter_points[MPAN] = replace(mp, tenancy_changes=(cot,))
    world.registration.consents[MPAN] = [Consent("ESCO1", MPAN, granted, None)]
    live = world.ask("u-esco", Role.OU, "4.8.1", ESME, at(probe)).accepted
    ended_by_tenancy = granted < cot <= probe
    assert live == (granted <= probe and not ended_by_tenancy)
