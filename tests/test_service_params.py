"""Service parameter schemas, the Verhoeff check digit and UTRN top-up codes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.reference.catalogue import CATALOGUE
from hub.reference.service_params import (
    DAY_S,
    EXAMPLE_NOW,
    SCHEMAS,
    Kind,
    example_params,
    schema_for,
    validate_params,
)
from hub.reference.utrn import (
    MAX_AMOUNT_PENCE,
    MAX_COUNTER,
    UtrnVerdict,
    check_utrn,
    make_utrn,
    parse_utrn,
    utrn_problem,
    verhoeff_check_digit,
    verhoeff_valid,
)

DEVICE_SERVICES = [s.code for s in CATALOGUE.values() if s.in_scope and not s.non_device]
DEVICE = "00DB1200000000A1"


def _tariff(**changes: object) -> dict[str, object]:
    params: dict[str, object] = {
        "standing_charge_pence_per_day": 50.0,
        "tou_rates_pence_per_kwh": [30.0],
    }
    params.update(changes)
    return params


# ---------------------------------------------------------------------------- schemas


def test_every_in_scope_device_service_has_a_schema_and_nothing_else_does() -> None:
    assert sorted(SCHEMAS, key=_key) == sorted(DEVICE_SERVICES, key=_key)


@pytest.mark.parametrize("code", DEVICE_SERVICES)
def test_every_device_service_example_is_valid(code: str) -> None:
    assert validate_params(code, example_params(code)) == []


def test_services_without_parameters_have_an_empty_schema_and_accept_an_empty_map() -> None:
    for code in ("4.1.1", "7.4", "2.5", "11.2"):
        schema = schema_for(code)
        assert schema is not None
        assert schema.params == ()
        assert validate_params(code, {}) == []


def test_examples_place_instants_around_the_given_now() -> None:
    now = 1_750_000_000.0
    params = example_params("4.8.1", now)
    assert params == {"start": now - 2 * DAY_S, "end": now}
    assert example_params("4.8.1")["end"] == EXAMPLE_NOW


def test_every_parameter_is_documented_and_lists_have_item_rules() -> None:
    for code, schema in SCHEMAS.items():
        for param in schema.params:
            assert param.doc, (code, param.name)
            assert (param.kind is Kind.LIST) == (param.item is not None), (code, param.name)
            if param.kind is Kind.CHOICE:
                assert param.choices, (code, param.name)


def test_unknown_parameter_names_are_problems() -> None:
    problems = validate_params("1.6", {"payment_mode": "credit", "colour": "blue"})
    assert len(problems) == 1
    assert "unknown parameter 'colour'" in problems[0]


def test_a_missing_required_parameter_is_a_problem() -> None:
    assert validate_params("1.6", {}) == ["missing required parameter 'payment_mode'"]


@pytest.mark.parametrize(
    ("code", "params", "expected"),
    [
        ("1.5", {"adjustment_pence": "500"}, "adjustment_pence must be an integer, got str"),
        ("1.5", {"adjustment_pence": 5.0}, "adjustment_pence must be an integer, got float"),
        ("1.5", {"adjustment_pence": True}, "adjustment_pence must be an integer, got bool"),
        ("6.26", {"daily_reset": 1}, "daily_reset must be a boolean, got int"),
        ("3.1", {"text": b"hello"}, "text must be a string, got bytes"),
        ("6.23", {"supplier_key_id": "K", "certificate": "not bytes"}, "certificate must be bytes"),
        ("4.8.1", {"start": "yesterday", "end": 1.7e9}, "start must be an instant"),
        ("6.6", {"conversion_factor": float("nan")}, "conversion_factor must be a number"),
        ("8.12.1", {"device_ids": "00DB1200000000A1"}, "device_ids must be a list, got str"),
        (
            "1.1.1",
            {"standing_charge_pence_per_day": 50, "tou_rates_pence_per_kwh": [20, "x"]},
            "tou_rates_pence_per_kwh[1] must be a number, got str",
        ),
    ],
)
def test_wrong_types_are_problems(code: str, params: dict[str, object], expected: str) -> None:
    problems = validate_params(code, params)  # type: ignore[arg-type]
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("code", "params", "expected"),
    [
        ("3.1", {"text": "x" * 161}, "longer than 160"),
        ("3.1", {"text": ""}, "shorter than 1"),
        ("1.5", {"adjustment_pence": 100_001}, "above the maximum"),
        ("2.1", {"low_credit_threshold_pence": -1}, "below the minimum"),
        ("1.6", {"payment_mode": "barter"}, "not one of credit, prepayment"),
        ("4.8.1", {"start": 1.7e9, "end": 1.7e9 + 31 * DAY_S}, "more than 30"),
        ("4.6.1", {"start": 1.7e9, "end": 1.7e9 + 32 * DAY_S}, "more than 31"),
        ("4.8.1", {"start": 1.7e9, "end": 1.7e9 - 1}, "end must be after start"),
        ("4.8.1", {"start": 5.0, "end": 10.0}, "below the minimum"),
        ("6.5", {"sag_v": 210.0, "swell_v": 205.0}, "sag_v (210 V) must be below swell_v"),
        ("6.12", {"low_medium_w": 3_000, "medium_high_w": 1_000}, "must be below"),
        ("6.18.1", {"start_time": "16:15", "end_time": "19:00"}, "not HH:MM on a half hour"),
        ("6.20.2", {"mpan": "1000123456789"}, "fails its check digit"),
        ("8.7.1", {"other_device_id": "00db1200000000a1"}, "16 upper-case hex digits"),
        ("2.2", {"utrn": "12345678901234567890"}, "fails its Verhoeff check digit"),
        ("2.2", {"utrn": "1234"}, "is not 20 digits"),
        ("2.1", {}, "at least one parameter"),
        ("1.1.1", _tariff(tou_rates_pence_per_kwh=[30.0, 15.0]), "tou_starts is required"),
        ("1.1.1", _tariff(block_thresholds_kwh=[100.0]), "go together"),
        (
            "1.1.1",
            _tariff(block_thresholds_kwh=[100.0], block_prices_pence_per_kwh=[1.0]),
            "need 2 block prices",
        ),
        (
            "2.3",
            {
                "debt_register": "payment_based",
                "adjustment_pence": 5,
                "recovery_rate_pence_per_day": 3,
            },
            "time_based register only",
        ),
        ("6.22", {"alert_code": "8F3", "enabled": True}, "not an alert code"),
        ("11.3", {"version": "2.1 beta"}, "not a firmware version"),
    ],
)
def test_out_of_range_and_inconsistent_values_are_problems(
    code: str, params: dict[str, object], expected: str
) -> None:
    problems = validate_params(code, params)  # type: ignore[arg-type]
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_not_just_the_first() -> None:
    problems = validate_params("6.4.1", {"load_limit_w": "lots", "disable_supply": "yes", "x": 1})
    assert len(problems) == 3


def test_non_device_and_unknown_services_have_no_schema() -> None:
    assert schema_for("11.1") is None
    assert validate_params("11.1", {}) == [
        "service 11.1 has no device parameters (non-device or out of scope)"
    ]
    assert validate_params("7.5", {}) != []
    assert validate_params("99.9", {}) == ["unknown service '99.9'"]


# ---------------------------------------------------------------------------- Verhoeff


@pytest.mark.parametrize(("digits", "check"), [("236", 3), ("12345", 1), ("142857", 0)])
def test_verhoeff_check_digit_matches_published_examples(digits: str, check: int) -> None:
    assert verhoeff_check_digit(digits) == check
    assert verhoeff_valid(digits + str(check))


NUMBERS = ["236", "12345", "8473643095", "00000000000000000001", "9876543210123456789"]


@pytest.mark.parametrize("body", NUMBERS)
def test_verhoeff_catches_every_single_digit_error(body: str) -> None:
    number = body + str(verhoeff_check_digit(body))
    for i, original in enumerate(number):
        for replacement in "0123456789":
            if replacement != original:
                wrong = number[:i] + replacement + number[i + 1 :]
                assert not verhoeff_valid(wrong), wrong


@pytest.mark.parametrize("body", NUMBERS)
def test_verhoeff_catches_every_adjacent_transposition(body: str) -> None:
    number = body + str(verhoeff_check_digit(body))
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not verhoeff_valid(swapped), swapped


def test_verhoeff_refuses_non_digits() -> None:
    with pytest.raises(ValueError):
        verhoeff_check_digit("12a")
    assert not verhoeff_valid("١٢٣")  # non-ASCII digits
    assert not verhoeff_valid("7")


# ---------------------------------------------------------------------------- UTRN


def test_a_utrn_is_twenty_digits_that_pass_verhoeff() -> None:
    code = make_utrn(DEVICE, 1_000, 7, key="SUPPLIER")
    assert len(code) == 20
    assert code.isdigit()
    assert verhoeff_valid(code)
    assert utrn_problem(code) is None


@settings(max_examples=200, derandomize=True)
@given(
    device=st.text(alphabet="0123456789ABCDEF", min_size=16, max_size=16),
    amount=st.integers(1, MAX_AMOUNT_PENCE),
    counter=st.integers(0, MAX_COUNTER),
    key=st.text(min_size=1, max_size=12),
)
def test_utrn_round_trip(device: str, amount: int, counter: int, key: str) -> None:
    code = make_utrn(device, amount, counter, key=key)
    fields = parse_utrn(code)
    assert (fields.amount_pence, fields.counter) == (amount, counter)
    assert check_utrn(code, device, key=key) == (UtrnVerdict.VALID, fields)


def test_a_utrn_for_another_device_is_recognised() -> None:
    code = make_utrn(DEVICE, 500, 1, key="SUPPLIER")
    verdict, _ = check_utrn(code, "00DB1200000000A2", key="SUPPLIER")
    assert verdict is UtrnVerdict.OTHER_DEVICE


def test_a_utrn_minted_with_another_key_is_not_authentic() -> None:
    code = make_utrn(DEVICE, 500, 1, key="OLD-SUPPLIER")
    assert check_utrn(code, DEVICE, key="NEW-SUPPLIER")[0] is UtrnVerdict.NOT_AUTHENTIC


def test_a_utrn_with_a_typo_is_malformed() -> None:
    code = make_utrn(DEVICE, 500, 1, key="SUPPLIER")
    typo = code[:5] + str((int(code[5]) + 1) % 10) + code[6:]
    assert utrn_problem(typo) is not None
    assert check_utrn(typo, DEVICE, key="SUPPLIER") == (UtrnVerdict.MALFORMED, None)
    with pytest.raises(ValueError):
        parse_utrn(typo)


def test_make_utrn_refuses_amounts_and_counters_it_cannot_encode() -> None:
    with pytest.raises(ValueError):
        make_utrn(DEVICE, 0, 1, key="K")
    with pytest.raises(ValueError):
        make_utrn(DEVICE, MAX_AMOUNT_PENCE + 1, 1, key="K")
    with pytest.raises(ValueError):
        make_utrn(DEVICE, 1, MAX_COUNTER + 1, key="K")


def _key(code: str) -> tuple[int, ...]:
    return tuple(int(p) for p in code.split("."))
