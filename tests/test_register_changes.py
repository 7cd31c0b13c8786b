"""Register changes as pure values: each kind applied to a registers snapshot, repeats, refusals,
stored records, and the change-file format both ways."""

from __future__ import annotations

from datetime import date

import pytest

from hub.reference.mpxn import make_mpan
from hub.reference.roles import Fuel
from hub.registers.change_files import (
    MAX_CHANGE_ROWS,
    change_file_lines,
    parse_change_file,
    register_of,
)
from hub.registers.change_records import change_from_record, change_record
from hub.registers.changes import (
    AgentAppointed,
    AgentAppointmentEnded,
    ChangeError,
    ChangeId,
    ConsentGiven,
    ConsentWithdrawn,
    ElectricitySupplierChange,
    GasSupplierChange,
    NewMeterPoint,
    Register,
    RegisterChange,
    SettlementChange,
    TenancyChange,
    apply_change,
    change_problem,
    losing_supplier,
)
from hub.registers.records import RecordError
from hub.registers.registration import (
    MeterPoint,
    RegistrationData,
    Settlement,
    SupplierRegistration,
)
from tests.world import MPAN, MPRN, World

DAY = date(2026, 9, 1)
E = Register.ELECTRICITY


def _data() -> RegistrationData:
    return World().registration


def _cid(seq: int, register: Register = E) -> ChangeId:
    return ChangeId(register, seq)


def test_a_change_of_electricity_supplier_moves_the_meter_point_from_its_effective_day() -> None:
    data = _data()
    change = ElectricitySupplierChange(change_id=_cid(1), effective=DAY, mpxn=MPAN, supplier="SUPC")
    assert losing_supplier(data, change) == "SUPB"
    assert apply_change(data, change)
    mp = data.meter_points[MPAN]
    assert mp.supplier_on(date(2026, 8, 31)) == "SUPB"
    assert mp.supplier_on(DAY) == "SUPC"
    assert mp.supplier_on(date(2030, 1, 1)) == "SUPC"


def test_a_change_of_supplier_before_a_booked_one_supersedes_it() -> None:
    data = _data()  # SUPB is booked to take over on 2026-06-01
    change = ElectricitySupplierChange(
        change_id=_cid(1), effective=date(2026, 5, 1), mpxn=MPAN, supplier="SUPC"
    )
    apply_change(data, change)
    mp = data.meter_points[MPAN]
    assert mp.supplier_on(date(2026, 6, 2)) == "SUPC"
    assert not mp.is_future_supplier("SUPB", date(2026, 4, 1))


def test_applying_the_same_change_id_twice_is_a_no_op() -> None:
    data = _data()
    change = ElectricitySupplierChange(change_id=_cid(1), effective=DAY, mpxn=MPAN, supplier="SUPC")
    assert apply_change(data, change)
    once = data.meter_points[MPAN]
    assert not apply_change(data, change)
    assert data.meter_points[MPAN] is once


def test_a_gas_supplier_change_on_an_mpan_is_refused_and_changes_nothing() -> None:
    data = _data()
    before = data.meter_points[MPAN]
    change = GasSupplierChange(
        change_id=_cid(1, Register.GAS), effective=DAY, mpxn=MPAN, supplier="SUPC"
    )
    with pytest.raises(ChangeError, match="electricity meter point, not gas"):
        apply_change(data, change)
    assert data.meter_points[MPAN] is before
    assert data.applied == set()


def test_a_gas_supplier_change_moves_the_supply_point() -> None:
    data = _data()
    change = GasSupplierChange(
        change_id=_cid(1, Register.GAS), effective=DAY, mpxn=MPRN, supplier="SUPB"
    )
    apply_change(data, change)
    assert data.meter_points[MPRN].supplier_on(DAY) == "SUPB"


def test_a_change_to_the_supplier_already_registered_is_refused() -> None:
    change = ElectricitySupplierChange(change_id=_cid(1), effective=DAY, mpxn=MPAN, supplier="SUPB")
    assert "already registered" in (change_problem(_data(), change) or "")


def test_a_change_for_an_unknown_meter_point_is_refused() -> None:
    change = TenancyChange(change_id=_cid(1), effective=DAY, mpxn=make_mpan("14", 77))
    assert "not in any register" in (change_problem(_data(), change) or "")


def test_a_change_of_tenancy_ends_the_escos_consent_that_day() -> None:
    data = _data()
    given = ConsentGiven(
        change_id=_cid(1, Register.CONSENTS), effective=date(2026, 5, 1), esco="ESCO2", mpxn=MPAN
    )
    apply_change(data, given)
    assert data.consent_live("ESCO2", MPAN, DAY)
    apply_change(data, TenancyChange(change_id=_cid(1), effective=DAY, mpxn=MPAN))
    assert data.consent_live("ESCO2", MPAN, date(2026, 8, 31))
    assert not data.consent_live("ESCO2", MPAN, DAY)


def test_an_esco_consent_given_then_withdrawn_opens_and_closes_its_access() -> None:
    data = _data()
    given = ConsentGiven(
        change_id=_cid(1, Register.CONSENTS), effective=DAY, esco="ESCO2", mpxn=MPRN
    )
    apply_change(data, given)
    assert data.consent_live("ESCO2", MPRN, DAY)
    withdrawn = ConsentWithdrawn(
        change_id=_cid(2, Register.CONSENTS), effective=date(2026, 10, 1), esco="ESCO2", mpxn=MPRN
    )
    apply_change(data, withdrawn)
    assert data.consent_live("ESCO2", MPRN, date(2026, 9, 30))
    assert not data.consent_live("ESCO2", MPRN, date(2026, 10, 1))


def test_withdrawing_a_consent_nobody_holds_is_refused() -> None:
    change = ConsentWithdrawn(
        change_id=_cid(1, Register.CONSENTS), effective=DAY, esco="NOBODY", mpxn=MPAN
    )
    assert "holds no consent" in (change_problem(_data(), change) or "")


def test_an_agent_appointment_and_its_end_open_and_close_the_agents_access() -> None:
    data = _data()
    a = Register.APPOINTMENTS
    apply_change(
        data,
        AgentAppointed(
            change_id=_cid(1, a), effective=DAY, agent="AGT2", supplier="SUPA", mpxn=MPRN
        ),
    )
    assert data.agent_appointed("AGT2", MPRN, DAY)
    apply_change(
        data,
        AgentAppointmentEnded(
            change_id=_cid(2, a),
            effective=date(2026, 12, 1),
            agent="AGT2",
            supplier="SUPA",
            mpxn=MPRN,
        ),
    )
    assert data.agent_appointed("AGT2", MPRN, date(2026, 11, 30))
    assert not data.agent_appointed("AGT2", MPRN, date(2026, 12, 1))


def test_a_new_meter_point_enters_the_register_with_its_first_supplier() -> None:
    data = _data()
    mpan = make_mpan("12", 900)
    mp = MeterPoint(mpan, Fuel.ELECTRICITY, "12", "UKPN", (SupplierRegistration("SUPA", DAY),))
    apply_change(data, NewMeterPoint(change_id=_cid(1), effective=DAY, meter_point=mp))
    assert data.meter_points[mpan].supplier_on(DAY) == "SUPA"
    again = NewMeterPoint(change_id=_cid(2), effective=DAY, meter_point=mp)
    assert "already in the register" in (change_problem(data, again) or "")


def test_a_settlement_flag_change_applies_from_its_effective_day() -> None:
    data = _data()
    change = SettlementChange(
        change_id=_cid(1), effective=DAY, mpxn=MPAN, settlement=Settlement.NON_HALF_HOURLY
    )
    apply_change(data, change)
    mp = data.meter_points[MPAN]
    assert mp.settlement_on(date(2026, 8, 31)) is Settlement.HALF_HOURLY
    assert mp.settlement_on(DAY) is Settlement.NON_HALF_HOURLY


def test_a_gas_meter_point_has_no_half_hourly_flag_to_change() -> None:
    change = SettlementChange(
        change_id=_cid(1), effective=DAY, mpxn=MPRN, settlement=Settlement.HALF_HOURLY
    )
    assert "gas is not settled half-hourly" in (change_problem(_data(), change) or "")


def test_change_ids_are_ordered_by_register_then_sequence_and_read_back() -> None:
    ids = [_cid(3), _cid(1, Register.GAS), _cid(2), ChangeId(Register.CONSENTS, 1)]
    assert [str(i) for i in sorted(ids)] == [
        "electricity:2",
        "electricity:3",
        "gas:1",
        "consents:1",
    ]
    assert ChangeId.parse("gas:12") == _cid(12, Register.GAS)
    with pytest.raises(ValueError, match="positive"):
        ChangeId(E, 0)


def _every_kind() -> list[RegisterChange]:
    mpan = make_mpan("12", 901)
    new = MeterPoint(
        mpan,
        Fuel.ELECTRICITY,
        "12",
        "UKPN",
        (SupplierRegistration("SUPA", DAY),),
        settlement=Settlement.NON_HALF_HOURLY,
        domestic=False,
    )
    return [
        ElectricitySupplierChange(change_id=_cid(1), effective=DAY, mpxn=MPAN, supplier="SUPC"),
        GasSupplierChange(change_id=_cid(1, Register.GAS), effective=DAY, mpxn=MPRN, supplier="B"),
        AgentAppointed(
            change_id=_cid(1, Register.APPOINTMENTS),
            effective=DAY,
            agent="A",
            supplier="S",
            mpxn=MPAN,
            ends=date(2027, 1, 1),
        ),
        AgentAppointmentEnded(
            change_id=_cid(2, Register.APPOINTMENTS),
            effective=DAY,
            agent="A",
            supplier="S",
            mpxn=MPAN,
        ),
        ConsentGiven(change_id=_cid(1, Register.CONSENTS), effective=DAY, esco="E", mpxn=MPAN),
        ConsentWithdrawn(change_id=_cid(2, Register.CONSENTS), effective=DAY, esco="E", mpxn=MPAN),
        TenancyChange(change_id=_cid(2), effective=DAY, mpxn=MPAN, source="f.csv:3"),
        NewMeterPoint(change_id=_cid(3), effective=DAY, meter_point=new),
        SettlementChange(
            change_id=_cid(4), effective=DAY, mpxn=MPAN, settlement=Settlement.NON_HALF_HOURLY
        ),
    ]


@pytest.mark.parametrize("change", _every_kind(), ids=lambda c: type(c).__name__)
def test_every_change_kind_survives_its_stored_record(change: RegisterChange) -> None:
    assert change_from_record(change_record(change)) == change


@pytest.mark.parametrize("change", _every_kind(), ids=lambda c: type(c).__name__)
def test_every_change_kind_survives_its_change_file(change: RegisterChange) -> None:
    register = change.change_id.register
    lines = list(change_file_lines(register, [change]))
    [parsed] = parse_change_file(lines, f"{register.value}-x.csv", register)
    assert parsed == _with_source(change, f"{register.value}-x.csv:2")


def _with_source(change: RegisterChange, source: str) -> RegisterChange:
    from dataclasses import replace

    return replace(change, source=source)


def test_a_change_file_name_says_its_register() -> None:
    assert register_of("electricity-2026-09-01.csv") is E
    assert register_of("consents-001.csv") is Register.CONSENTS
    assert register_of("notes.txt") is None
    assert register_of("water-1.csv") is None


HEADER = "seq,event,effective,mpan,supplier,area,network_operator,data_collector,smart,settlement,domestic,export\n"


def _bad(*rows: str) -> RecordError:
    with pytest.raises(RecordError) as info:
        parse_change_file([HEADER, *rows], "electricity-bad.csv", E)
    return info.value


def test_a_malformed_change_file_is_refused_with_file_line_and_reason() -> None:
    good = f"1,supplier,2026-09-01,{MPAN},SUPC,,,,,,,\n"
    err = _bad(good, f"2,supplier,2026-09-31,{MPAN},SUPC,,,,,,,\n")
    assert (err.file, err.line) == ("electricity-bad.csv", 3)
    assert "not a valid date" in err.reason
    assert "does not follow" in _bad(good, good).reason
    assert "event must be one of" in _bad(f"1,moved,2026-09-01,{MPAN},,,,,,,,\n").reason
    assert "supplier is empty" in _bad(f"1,supplier,2026-09-01,{MPAN},,,,,,,,\n").reason
    assert "must be empty" in _bad(f"1,tenancy,2026-09-01,{MPAN},SUPC,,,,,,,\n").reason
    assert "check digit" in _bad("1,tenancy,2026-09-01,1200000000000,,,,,,,,\n").reason
    assert "header must be" in _bad_header().reason


def _bad_header() -> RecordError:
    with pytest.raises(RecordError) as info:
        parse_change_file(["seq,event\n"], "electricity-bad.csv", E)
    return info.value


def test_a_change_file_with_too_many_rows_is_refused() -> None:
    rows = (f"{i},tenancy,2026-09-01,{MPAN},,,,,,,,\n" for i in range(1, MAX_CHANGE_ROWS + 2))
    with pytest.raises(RecordError, match=f"more than {MAX_CHANGE_ROWS}"):
        parse_change_file([HEADER, *rows], "electricity-big.csv", E)
