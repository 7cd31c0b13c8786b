"""Fleet file records: every bad record is refused with its file, line and reason, and good
records survive a write and a read unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from hub.reference.mpxn import make_mpan
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.registers import records
from hub.registers.inventory import Device, DeviceStatus, Product, Site
from hub.registers.records import PaymentMode, RecordError
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
    Settlement,
    SupplierRegistration,
)

MPAN = make_mpan("12", 1)
MPAN_2 = make_mpan("12", 2)
UNKNOWN_MPAN = make_mpan("12", 99)
BAD_CHECK = MPAN[:12] + str((int(MPAN[12]) + 1) % 10)
MPRN = "7000000001"
CHF, GPF, ESME, GSME, IHD = (f"0A1D3E00000000{n:02X}" for n in range(1, 6))

Parse = Callable[[list[str]], object]


def lines(*rows: str) -> list[str]:
    """Text lines as a file would yield them."""
    return [row + "\n" for row in rows]


def refusal(parse: Parse, text: list[str]) -> RecordError:
    """The error a parser raises for ``text``."""
    with pytest.raises(RecordError) as caught:
        parse(text)
    return caught.value


# ---------------------------------------------------------------------------- good files

USERS = lines(
    "user_id,party_id,name,roles,status,public_key",
    "u-supa,SUPA,Ashdown Energy,IS;GS,active,",
    "u-ukpn,UKPN,UK Power Networks,ED,active,",
)
REGISTRATIONS = lines(
    "mpxn,supplier,effective_from,effective_to",
    f"{MPAN},SUPA,2020-01-01,2024-06-01",
    f"{MPAN},SUPB,2024-06-01,",
    f"{MPRN},SUPA,2021-05-05,",
)
ELECTRICITY = lines(
    "mpan,area,network_operator,data_collector,smart,settlement,domestic,export,tenancy_changes",
    f"{MPAN},12,UKPN,DCC,Y,HH,Y,N,2022-02-02;2024-03-03",
    f"{MPAN_2},12,UKPN,NDCA,Y,NHH,N,N,",
)
GAS = lines(
    "mprn,ldz,network_operator,data_collector,smart,domestic,tenancy_changes",
    f"{MPRN},NT,CADENT,DCC,Y,Y,",
)
APPOINTMENTS = lines(
    "agent,supplier,mpxn,effective_from,effective_to",
    f"AGTA,SUPB,{MPAN},2024-06-01,",
)
CONSENTS = lines(
    "esco,mpxn,granted,expires",
    f"ESCA,{MPAN},2023-01-01,2026-01-01",
)
PRODUCTS = lines(
    "manufacturer,model,device_type,head_end,early_smart",
    "Aldermet,AM-CH,CHF,tlv,N",
    "Aldermet,AM-CH-GPF,GPF,tlv,N",
    "Aldermet,AM-E,ESME,tlv,N",
    "Aldermet,AM-G,GSME,tlv,N",
    "Aldermet,AM-D,IHD,tlv,N",
)
SITES = lines(
    "site_id,comms_hub,lead_supplier,region,cell",
    f"S1,{CHF},SUPB,South,S-0001",
)
DEVICES_HEADER = (
    "device_id,device_type,site_id,manufacturer,model,firmware,head_end,status,mpxn,"
    "early_smart,payment_mode"
)
DEVICES = lines(
    DEVICES_HEADER,
    f"{CHF},CHF,S1,Aldermet,AM-CH,1.0,tlv,Commissioned,,N,",
    f"{GPF},GPF,S1,Aldermet,AM-CH-GPF,1.0,tlv,Commissioned,,N,",
    f"{ESME},ESME,S1,Aldermet,AM-E,2.1,tlv,Commissioned,{MPAN},N,prepayment",
    f"{GSME},GSME,S1,Aldermet,AM-G,3.0,tlv,Commissioned,{MPRN},N,credit",
    f"{IHD},IHD,S1,Aldermet,AM-D,1.2,tlv,Decommissioned,,N,",
)


def registrations() -> records.RegistrationTable:
    return records.parse_registrations(REGISTRATIONS)


def meter_points() -> dict[str, MeterPoint]:
    regs = registrations()
    mps = records.parse_electricity_register(ELECTRICITY, registrations=regs)
    mps += records.parse_gas_register(GAS, registrations=regs)
    return {mp.mpxn: mp for mp in mps}


def products() -> dict[tuple[str, str], Product]:
    return {(p.manufacturer, p.model): p for p in records.parse_products(PRODUCTS)}


def with_line(text: list[str], number: int, row: str) -> list[str]:
    """``text`` with its line ``number`` (1-based) replaced, or appended after the end."""
    out = list(text)
    if number <= len(out):
        out[number - 1] = row + "\n"
    else:
        out.append(row + "\n")
    return out


def parse_electricity(text: list[str]) -> object:
    return records.parse_electricity_register(text, "elec.csv", registrations=registrations())


def parse_gas(text: list[str]) -> object:
    return records.parse_gas_register(text, "gas.csv", registrations=registrations())


def parse_devices(text: list[str]) -> object:
    return records.parse_devices(
        text,
        "dev.csv",
        sites=records.parse_sites(SITES),
        meter_points=meter_points(),
        products=products(),
    )


# ---------------------------------------------------------------------------- good records


def test_good_files_parse_into_the_hubs_typed_records() -> None:
    users = records.parse_users(USERS)
    assert users["u-supa"].roles == frozenset({Role.IS, Role.GS})
    mps = meter_points()
    elec = mps[MPAN]
    assert elec.supplier_on(date(2024, 5, 31)) == "SUPA"
    assert elec.supplier_on(date(2024, 6, 1)) == "SUPB"
    assert elec.tenancy_changes == (date(2022, 2, 2), date(2024, 3, 3))
    assert mps[MPAN_2].data_collector == "NDCA"
    assert mps[MPAN_2].settlement is Settlement.NON_HALF_HOURLY
    assert mps[MPRN].fuel is Fuel.GAS
    table = parse_devices(DEVICES)
    assert isinstance(table, records.DeviceTable)
    assert [d.device_type for d in table.devices] == [
        DeviceType.CHF,
        DeviceType.GPF,
        DeviceType.ESME,
        DeviceType.GSME,
        DeviceType.IHD,
    ]
    assert table.payment_modes == {ESME: PaymentMode.PREPAYMENT, GSME: PaymentMode.CREDIT}


def test_a_byte_order_mark_crlf_endings_and_blank_lines_are_accepted() -> None:
    text = ["\ufeff" + USERS[0].replace("\n", "\r\n"), "\r\n", USERS[1].replace("\n", "\r\n")]
    assert list(records.parse_users(text)) == ["u-supa"]


def test_good_records_survive_a_write_and_a_read_unchanged() -> None:
    users = [
        User("u-a", "SUPA", 'Quote "and", comma', frozenset({Role.GS, Role.IS})),
        User("u-b", "ESCB", "Suspended ESCO", frozenset({Role.OU}), UserStatus.SUSPENDED, "k" * 40),
    ]
    assert list(records.parse_users(list(records.format_users(users))).values()) == users

    regs = (
        SupplierRegistration("SUPA", date(2020, 1, 1), date(2024, 6, 1)),
        SupplierRegistration("SUPB", date(2024, 6, 1)),
    )
    elec = [
        MeterPoint(MPAN, Fuel.ELECTRICITY, "12", "UKPN", regs, tenancy_changes=(date(2022, 2, 2),)),
        MeterPoint(
            MPAN_2,
            Fuel.ELECTRICITY,
            "12",
            "UKPN",
            (SupplierRegistration("SUPH", date(2023, 3, 3)),),
            export=True,
            domestic=False,
            settlement=Settlement.NON_HALF_HOURLY,
        ),
    ]
    gas = [
        MeterPoint(
            MPRN,
            Fuel.GAS,
            "NT",
            "CADENT",
            (SupplierRegistration("SUPA", date(2021, 5, 5)),),
            data_collector="NDCB",
            settlement=Settlement.NON_HALF_HOURLY,
        )
    ]
    table = records.parse_registrations(list(records.format_registrations(elec + gas)))
    assert (
        records.parse_electricity_register(
            list(records.format_electricity_register(elec + gas)), registrations=table
        )
        == elec
    )
    assert (
        records.parse_gas_register(
            list(records.format_gas_register(elec + gas)), registrations=table
        )
        == gas
    )

    mps = {mp.mpxn: mp for mp in elec + gas}
    appointments = [
        AgentAppointment("AGTA", "SUPB", MPAN, date(2024, 6, 1)),
        AgentAppointment("AGTB", "SUPA", MPRN, date(2022, 1, 1), date(2023, 1, 1)),
    ]
    text = list(records.format_appointments(appointments))
    assert records.parse_appointments(text, meter_points=mps) == appointments
    consents = [
        Consent("ESCA", MPAN, date(2023, 1, 1)),
        Consent("ESCB", MPRN, date(2023, 1, 1), date(2024, 1, 1)),
    ]
    assert records.parse_consents(list(records.format_consents(consents))) == consents

    prods = [Product("Corrie Instruments", "CI-S1E", DeviceType.ESME, "text", early_smart=True)]
    assert records.parse_products(list(records.format_products(prods))) == prods
    sites = [Site("S1", CHF, "SUPB", "South", "S-0001")]
    parsed_sites = records.parse_sites(list(records.format_sites(sites)))
    assert list(parsed_sites.values()) == sites
    devices = [
        Device(
            CHF, DeviceType.CHF, "S1", "Aldermet", "AM-CH", "1.0", "tlv", DeviceStatus.COMMISSIONED
        ),
        Device(
            ESME,
            DeviceType.ESME,
            "S1",
            "Aldermet",
            "AM-E",
            "2.1",
            "tlv",
            DeviceStatus.SUSPENDED,
            MPAN,
            early_smart=True,
        ),
    ]
    modes = {ESME: PaymentMode.CREDIT}
    back = records.parse_devices(
        list(records.format_devices(devices, modes)), sites=parsed_sites, meter_points=mps
    )
    assert back.devices == devices
    assert back.payment_modes == modes


# ---------------------------------------------------------------------------- bad records

FILE_CASES: list[tuple[str, Parse, list[str], int, str]] = [
    # (case, parser, text, line, reason fragment)
    ("empty file", lambda t: records.parse_users(t, "u.csv"), [], 1, "missing header row"),
    (
        "wrong header",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 1, "user_id,party,name,roles,status,public_key"),
        1,
        "header must be user_id,party_id",
    ),
    (
        "wrong column count",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 3, "u-ukpn,UKPN,UK Power Networks,ED,active"),
        3,
        "expected 6 columns, found 5",
    ),
    (
        "unterminated quote",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 3, 'u-ukpn,UKPN,"UK Power, Networks,ED,active,'),
        3,
        "malformed CSV",
    ),
    (
        "unknown role",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 2, "u-supa,SUPA,Ashdown,IS;XX,active,"),
        2,
        "unknown role 'XX'",
    ),
    (
        "unknown user status",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 3, "u-ukpn,UKPN,UKPN,ED,retired,"),
        3,
        "unknown user status 'retired'",
    ),
    (
        "user without a role",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 3, "u-ukpn,UKPN,UKPN,,active,"),
        3,
        "holds no role",
    ),
    (
        "user twice",
        lambda t: records.parse_users(t, "u.csv"),
        with_line(USERS, 4, "u-supa,SUPA,Again,IS,active,"),
        4,
        "user u-supa appears twice",
    ),
    (
        "date in the wrong format",
        lambda t: records.parse_registrations(t, "r.csv"),
        with_line(REGISTRATIONS, 4, f"{MPRN},SUPA,05/05/2021,"),
        4,
        "is not a date yyyy-mm-dd",
    ),
    (
        "impossible date",
        lambda t: records.parse_registrations(t, "r.csv"),
        with_line(REGISTRATIONS, 4, f"{MPRN},SUPA,2021-02-30,"),
        4,
        "is not a valid date",
    ),
    (
        "registration ending before it starts",
        lambda t: records.parse_registrations(t, "r.csv"),
        with_line(REGISTRATIONS, 4, f"{MPRN},SUPA,2021-05-05,2021-05-05"),
        4,
        "is not after effective_from",
    ),
    (
        "overlapping registrations",
        lambda t: records.parse_registrations(t, "r.csv"),
        with_line(REGISTRATIONS, 3, f"{MPAN},SUPB,2024-05-31,"),
        3,
        f"registrations of {MPAN} overlap (lines 2 and 3)",
    ),
    (
        "registration without a supplier",
        lambda t: records.parse_registrations(t, "r.csv"),
        with_line(REGISTRATIONS, 4, f"{MPRN},,2021-05-05,"),
        4,
        "supplier is empty",
    ),
    (
        "bad MPAN check digit",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{BAD_CHECK},12,UKPN,DCC,Y,HH,Y,N,"),
        3,
        "fails its check digit",
    ),
    (
        "area not matching the MPAN",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},14,NGED,DCC,Y,HH,Y,N,"),
        3,
        "area 14 does not match MPAN",
    ),
    (
        "area outside 10-23",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},24,UKPN,DCC,Y,HH,Y,N,"),
        3,
        "is not a distributor id 10-23",
    ),
    (
        "a second network operator for an area",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},12,NGED,DCC,Y,HH,Y,N,"),
        3,
        "area 12 has network operator NGED here but UKPN",
    ),
    (
        "flag that is not Y or N",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},12,UKPN,DCC,yes,HH,Y,N,"),
        3,
        "smart must be Y or N",
    ),
    (
        "unknown settlement",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},12,UKPN,DCC,Y,QH,Y,N,"),
        3,
        "settlement must be HH or NHH",
    ),
    (
        "MPAN twice",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN},12,UKPN,DCC,Y,HH,Y,N,"),
        3,
        f"MPAN {MPAN} appears twice",
    ),
    (
        "tenancy changes out of order",
        parse_electricity,
        with_line(ELECTRICITY, 3, f"{MPAN_2},12,UKPN,DCC,Y,HH,Y,N,2024-01-01;2023-01-01"),
        3,
        "increasing date order",
    ),
    (
        "MPRN starting with 0",
        parse_gas,
        with_line(GAS, 2, "0700000001,NT,CADENT,DCC,Y,Y,"),
        2,
        "starts with 0",
    ),
    (
        "unknown gas zone",
        parse_gas,
        with_line(GAS, 2, f"{MPRN},XX,CADENT,DCC,Y,Y,"),
        2,
        "ldz 'XX' is not one of",
    ),
    (
        "appointment for an unknown meter point",
        lambda t: records.parse_appointments(t, "a.csv", meter_points=meter_points()),
        with_line(APPOINTMENTS, 2, "AGTA,SUPB,7000000002,2024-06-01,"),
        2,
        "meter point 7000000002 is in neither register",
    ),
    (
        "appointment by a supplier never registered",
        lambda t: records.parse_appointments(t, "a.csv", meter_points=meter_points()),
        with_line(APPOINTMENTS, 2, f"AGTA,SUPC,{MPAN},2024-06-01,"),
        2,
        f"supplier SUPC was never registered for {MPAN}",
    ),
    (
        "appointment naming a malformed MPAN",
        lambda t: records.parse_appointments(t, "a.csv"),
        with_line(APPOINTMENTS, 2, f"AGTA,SUPB,{BAD_CHECK},2024-06-01,"),
        2,
        "fails its check digit",
    ),
    (
        "consent expiring before it is granted",
        lambda t: records.parse_consents(t, "c.csv"),
        with_line(CONSENTS, 2, f"ESCA,{MPAN},2023-01-01,2022-01-01"),
        2,
        "expires 2022-01-01 is not after granted",
    ),
    (
        "unknown device type",
        lambda t: records.parse_products(t, "p.csv"),
        with_line(PRODUCTS, 6, "Aldermet,AM-X,TOASTER,tlv,N"),
        6,
        "unknown device type 'TOASTER'",
    ),
    (
        "product twice",
        lambda t: records.parse_products(t, "p.csv"),
        with_line(PRODUCTS, 7, "Aldermet,AM-E,ESME,cosem,N"),
        7,
        "product Aldermet/AM-E appears twice",
    ),
    (
        "unknown region",
        lambda t: records.parse_sites(t, "s.csv"),
        with_line(SITES, 2, f"S1,{CHF},SUPB,Midlands,S-0001"),
        2,
        "region 'Midlands' is not one of",
    ),
    (
        "comms hub that is not an EUI-64",
        lambda t: records.parse_sites(t, "s.csv"),
        with_line(SITES, 2, "S1,0a1d3e0000000001,SUPB,South,S-0001"),
        2,
        "is not 16 upper-case hex digits",
    ),
    (
        "site twice",
        lambda t: records.parse_sites(t, "s.csv"),
        with_line(SITES, 3, "S1,0A1D3E00000000FF,SUPB,South,S-0001"),
        3,
        "site S1 appears twice",
    ),
    (
        "device naming an unknown site",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S9,Aldermet,AM-D,1.2,tlv,Commissioned,,N,"),
        6,
        "names unknown site 'S9'",
    ),
    (
        "unknown device status",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S1,Aldermet,AM-D,1.2,tlv,Broken,,N,"),
        6,
        "unknown device status 'Broken'",
    ),
    (
        "device id that is not an EUI-64",
        parse_devices,
        with_line(DEVICES, 6, "0A1D3E000000005,IHD,S1,Aldermet,AM-D,1.2,tlv,Commissioned,,N,"),
        6,
        "is not 16 upper-case hex digits",
    ),
    (
        "device twice",
        parse_devices,
        with_line(DEVICES, 6, f"{GSME},IHD,S1,Aldermet,AM-D,1.2,tlv,Commissioned,,N,"),
        6,
        f"device {GSME} appears twice",
    ),
    (
        "CHF that is not the site's comms hub",
        parse_devices,
        with_line(DEVICES, 2, f"{IHD},CHF,S1,Aldermet,AM-CH,1.0,tlv,Commissioned,,N,"),
        2,
        f"site S1 has comms hub {CHF}, not {IHD}",
    ),
    (
        "site whose comms hub is missing",
        parse_devices,
        DEVICES[:1] + DEVICES[2:],
        5,
        f"site S1's comms hub {CHF} is not in the file",
    ),
    (
        "meter without a payment mode",
        parse_devices,
        with_line(DEVICES, 4, f"{ESME},ESME,S1,Aldermet,AM-E,2.1,tlv,Commissioned,{MPAN},N,"),
        4,
        "payment_mode of ESME must be credit or prepayment",
    ),
    (
        "display carrying a meter point",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S1,Aldermet,AM-D,1.2,tlv,Commissioned,{MPAN},N,"),
        6,
        "only meters do",
    ),
    (
        "electricity meter naming a gas meter point",
        parse_devices,
        with_line(DEVICES, 4, f"{ESME},ESME,S1,Aldermet,AM-E,2.1,tlv,Commissioned,{MPRN},N,credit"),
        4,
        f"names gas meter point {MPRN}",
    ),
    (
        "meter naming an unknown meter point",
        parse_devices,
        with_line(
            DEVICES, 4, f"{ESME},ESME,S1,Aldermet,AM-E,2.1,tlv,Commissioned,{UNKNOWN_MPAN},N,credit"
        ),
        4,
        f"meter point {UNKNOWN_MPAN} is in neither register",
    ),
    (
        "commissioned device of an unapproved model",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S1,Aldermet,AM-D9,1.2,tlv,Commissioned,,N,"),
        6,
        "not on the approved products list",
    ),
    (
        "device with another head end than its model",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S1,Aldermet,AM-D,1.2,cosem,Commissioned,,N,"),
        6,
        "uses head end tlv, not cosem",
    ),
    (
        "adopted early-smart device of a model not approved as early smart",
        parse_devices,
        with_line(DEVICES, 6, f"{IHD},IHD,S1,Aldermet,AM-D,1.2,tlv,Commissioned,,Y,"),
        6,
        "not approved as an early-smart model",
    ),
]


@pytest.mark.parametrize(
    ("parse", "text", "line", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in FILE_CASES],
)
def test_a_bad_record_is_refused_with_its_file_line_and_reason(
    parse: Parse, text: list[str], line: int, reason: str
) -> None:
    error = refusal(parse, text)
    assert error.line == line
    assert reason in error.reason
    assert error.file.endswith(".csv")
    assert str(error).startswith(f"{error.file}:{line}: ")


def test_a_registration_for_a_meter_point_in_neither_register_is_refused_with_its_line() -> None:
    table = records.parse_registrations(
        with_line(REGISTRATIONS, 5, "7000000002,SUPA,2021-05-05,"), "r.csv"
    )
    error = refusal(lambda _: records.check_registrations_joined(table, meter_points()), [])
    assert (error.file, error.line) == ("r.csv", 5)
    assert "meter point 7000000002 is in neither register" in error.reason


def test_a_site_or_device_already_used_by_another_file_is_refused_with_its_line() -> None:
    error = refusal(lambda t: records.parse_sites(t, "c.csv", taken={"S1"}), SITES)
    assert (error.line, error.reason) == (2, "site S1 is already used by another file")
    error = refusal(
        lambda t: records.parse_devices(t, "c.csv", sites=records.parse_sites(SITES), taken={IHD}),
        DEVICES,
    )
    assert (error.line, error.reason) == (6, f"device {IHD} is already used by another file")


def test_a_candidate_of_a_non_compliant_model_is_accepted_when_products_are_not_checked() -> None:
    text = with_line(DEVICES, 6, f"{IHD},IHD,S1,Corrie,CI-S1D,0.3,text,Pending,,Y,")
    table = records.parse_devices(
        text, sites=records.parse_sites(SITES), meter_points=meter_points()
    )
    assert table.devices[-1].status is DeviceStatus.PENDING
