"""Meter point numbers: MPAN cores (electricity) and MPRNs (gas).

Decides: whether a meter point number is well formed, and the distributor id an MPAN names.
Must never: look anything up; these are pure checks on the digits.
"""

from __future__ import annotations

from operator import mul

_MPAN_WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
DISTRIBUTOR_IDS = tuple(str(n) for n in range(10, 24))
"""The 14 GB electricity distribution areas, by the distributor id that starts an MPAN core."""


def mpan_check_digit(first12: str) -> int:
    """The check digit of an MPAN core from its first 12 digits (prime-weighted, mod 11, mod 10)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError(f"need 12 digits, got {first12!r}")
    total: int = sum(map(mul, map(int, first12), _MPAN_WEIGHTS))
    return total % 11 % 10


def mpan_problem(mpan: str) -> str | None:
    """Why ``mpan`` is not a valid 13-digit MPAN core, or None if it is."""
    if len(mpan) != 13 or not mpan.isdigit():
        return f"MPAN {mpan!r} is not 13 digits"
    if mpan[:2] not in DISTRIBUTOR_IDS:
        return f"MPAN {mpan} has distributor id {mpan[:2]}, not one of 10-23"
    if mpan_check_digit(mpan[:12]) != int(mpan[12]):
        return f"MPAN {mpan} fails its check digit"
    return None


def mprn_problem(mprn: str) -> str | None:
    """Why ``mprn`` is not a well-formed MPRN (6 to 10 digits, no leading zero), or None."""
    if not mprn.isdigit() or not 6 <= len(mprn) <= 10:
        return f"MPRN {mprn!r} is not 6 to 10 digits"
    if mprn[0] == "0":
        return f"MPRN {mprn} starts with 0"
    return None


def make_mpan(distributor_id: str, serial: int) -> str:
    """A valid MPAN core for a distributor id and a serial number (< 10**10)."""
    body = f"{distributor_id}{serial:010d}"
    return body + str(mpan_check_digit(body))
