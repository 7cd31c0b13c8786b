"""UTRN top-up codes: 20 digits, the last a Verhoeff check digit.

Decides: whether a UTRN (Unique Transaction Reference Number, the prepayment top-up code) is
well formed, what it encodes, and whether it is authentic and meant for a given meter.

The project's layout of the 19 payload digits (the real GB codes are cryptographic tokens;
this model keeps their observable behaviour, not their cryptography):

    counter (6) | amount in pence (5) | device tag (4) | authenticator (4) | Verhoeff check (1)

The device tag is derived from the target device id, so a meter can tell a code minted for
another device (alert 8F64); the authenticator binds device, amount and counter to the
supplier's key, so a code with a valid check digit but made up digits is not authentic (8F63);
the counter lets the meter refuse a code it has already accepted (8F51).
Must never: remember which codes were used; the meter holds that state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

UTRN_LENGTH = 20
"""Digits in a UTRN, the check digit included."""
MAX_AMOUNT_PENCE = 99_999
"""The largest credit one code can carry (five digits of pence)."""
MAX_COUNTER = 999_999
"""The largest transaction counter (six digits)."""

_COUNTER_DIGITS = 6
_AMOUNT_DIGITS = 5
_TAG_DIGITS = 4
_MAC_DIGITS = 4
_TAG_MODULUS = 10_000
_MAC_MODULUS = 10_000

# --- Verhoeff: the dihedral group D5 of the pentagon's symmetries, built from its definition.
# Elements 0-4 are the rotations r^k, elements 5-9 the reflections s.r^k.


def _d5(i: int, j: int) -> int:
    if i < 5 and j < 5:
        return (i + j) % 5
    if i < 5:
        return 5 + (i + j) % 5
    if j < 5:
        return 5 + (i - j) % 5
    return (i - j) % 5


_MUL = tuple(tuple(_d5(i, j) for j in range(10)) for i in range(10))
_INV = tuple(next(j for j in range(10) if _MUL[i][j] == 0) for i in range(10))
_P1 = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)  # the position permutation; its powers repeat every 8


def _powers(base: tuple[int, ...], count: int) -> tuple[tuple[int, ...], ...]:
    rows = [tuple(range(10))]
    for _ in range(count - 1):
        rows.append(tuple(base[x] for x in rows[-1]))
    return tuple(rows)


_PERM = _powers(_P1, 8)


def _verhoeff_state(digits: str, first_position: int) -> int:
    state = 0
    for position, ch in enumerate(reversed(digits), start=first_position):
        state = _MUL[state][_PERM[position % 8][int(ch)]]
    return state


def verhoeff_check_digit(digits: str) -> int:
    """The Verhoeff check digit to append to ``digits`` (a non-empty string of digits)."""
    if not digits or not digits.isdigit() or not digits.isascii():
        raise ValueError(f"need a string of digits, got {digits!r}")
    return _INV[_verhoeff_state(digits, 1)]


def verhoeff_valid(number: str) -> bool:
    """True when ``number`` (digits, check digit last) passes the Verhoeff check."""
    if len(number) < 2 or not number.isdigit() or not number.isascii():
        return False
    return _verhoeff_state(number, 0) == 0


# --- UTRN payload


class UtrnVerdict(StrEnum):
    """What a meter makes of a UTRN."""

    VALID = "valid"
    MALFORMED = "malformed"  # wrong length, not digits, or failed check digit: not authentic
    NOT_AUTHENTIC = "not authentic"  # alert 8F63
    OTHER_DEVICE = "for another device"  # alert 8F64


@dataclass(frozen=True, slots=True)
class Utrn:
    """The fields a UTRN carries."""

    counter: int
    """Transaction counter; a meter accepts each counter once."""
    amount_pence: int
    """Credit the code adds, in pence."""
    device_tag: int
    """Four digits derived from the target device id."""
    authenticator: int
    """Four digits binding device, amount and counter to the supplier's key."""


def _digest(*parts: str) -> int:
    data = "\x1f".join(parts).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def device_tag(device_id: str) -> int:
    """The four-digit tag a UTRN carries for ``device_id``."""
    return _digest("utrn-device", device_id.upper()) % _TAG_MODULUS


def _authenticator(device_id: str, amount_pence: int, counter: int, key: str) -> int:
    return (
        _digest("utrn-mac", key, device_id.upper(), str(amount_pence), str(counter)) % _MAC_MODULUS
    )


def utrn_problem(code: str) -> str | None:
    """Why ``code`` is not a well-formed UTRN (20 digits, Verhoeff check digit last), or None."""
    if not isinstance(code, str):
        return f"UTRN must be a string of {UTRN_LENGTH} digits"
    if len(code) != UTRN_LENGTH or not code.isdigit() or not code.isascii():
        return f"UTRN {code!r} is not {UTRN_LENGTH} digits"
    if not verhoeff_valid(code):
        return f"UTRN {code} fails its Verhoeff check digit"
    return None


def parse_utrn(code: str) -> Utrn:
    """The fields of a well-formed UTRN; ``ValueError`` with the problem otherwise."""
    problem = utrn_problem(code)
    if problem is not None:
        raise ValueError(problem)
    a = _COUNTER_DIGITS
    b = a + _AMOUNT_DIGITS
    c = b + _TAG_DIGITS
    d = c + _MAC_DIGITS
    return Utrn(
        counter=int(code[:a]),
        amount_pence=int(code[a:b]),
        device_tag=int(code[b:c]),
        authenticator=int(code[c:d]),
    )


def make_utrn(device_id: str, amount_pence: int, counter: int, *, key: str) -> str:
    """A valid UTRN adding ``amount_pence`` to ``device_id``, transaction ``counter``, minted
    with the supplier's ``key`` (the key id the meter holds for its supplier)."""
    if not 0 < amount_pence <= MAX_AMOUNT_PENCE:
        raise ValueError(f"amount must be 1 to {MAX_AMOUNT_PENCE} pence, got {amount_pence}")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter must be 0 to {MAX_COUNTER}, got {counter}")
    body = (
        f"{counter:0{_COUNTER_DIGITS}d}{amount_pence:0{_AMOUNT_DIGITS}d}"
        f"{device_tag(device_id):0{_TAG_DIGITS}d}"
        f"{_authenticator(device_id, amount_pence, counter, key):0{_MAC_DIGITS}d}"
    )
    return body + str(verhoeff_check_digit(body))


def check_utrn(code: str, device_id: str, *, key: str) -> tuple[UtrnVerdict, Utrn | None]:
    """What the meter ``device_id`` holding supplier ``key`` makes of ``code``: the verdict and,
    when the code is well formed, its fields (duplicates are the meter's to judge)."""
    if utrn_problem(code) is not None:
        return UtrnVerdict.MALFORMED, None
    fields = parse_utrn(code)
    if fields.device_tag != device_tag(device_id):
        return UtrnVerdict.OTHER_DEVICE, fields
    expected = _authenticator(device_id, fields.amount_pence, fields.counter, key)
    if fields.amount_pence == 0 or fields.authenticator != expected:
        return UtrnVerdict.NOT_AUTHENTIC, fields
    return UtrnVerdict.VALID, fields
