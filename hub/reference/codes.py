"""Response codes: the DUIS codes the hub answers with, and the project's own codes.

Decides: the spelling and meaning of every code a service user can receive.
Must never: carry behaviour; codes are data, decisions live elsewhere.
"""

from __future__ import annotations

from enum import StrEnum


class ResponseCode(StrEnum):
    """A response code. DUIS codes keep their domain spelling; project codes start with ``H``."""

    I0 = "I0"
    I99 = "I99"
    E1 = "E1"
    E2 = "E2"
    E3 = "E3"
    E4 = "E4"
    E5 = "E5"
    E11 = "E11"
    E12 = "E12"
    E19 = "E19"
    E20 = "E20"
    E21 = "E21"
    E30 = "E30"
    H1 = "H1"
    H2 = "H2"
    H3 = "H3"
    H4 = "H4"
    H5 = "H5"
    H6 = "H6"
    H7 = "H7"
    H8 = "H8"
    H9 = "H9"
    H10 = "H10"
    H11 = "H11"
    H12 = "H12"

    @property
    def is_success(self) -> bool:
        """True for I0 (executed) and I99 (accepted)."""
        return self in (ResponseCode.I0, ResponseCode.I99)

    @property
    def meaning(self) -> str:
        """One line saying what the code means, as written in docs/protocol.md."""
        return MEANINGS[self]


MEANINGS: dict[ResponseCode, str] = {
    ResponseCode.I0: "success: the command ran and this is its response",
    ResponseCode.I99: "accepted: passed validation and access control, will be executed",
    ResponseCode.E1: "invalid user, or the user does not hold the role it acted in",
    ResponseCode.E2: "the role may not send this service",
    ResponseCode.E3: "the user's status does not allow it to send requests",
    ResponseCode.E4: "not authorised for this device at the execution date and time",
    ResponseCode.E5: "device status is incompatible with the service",
    ResponseCode.E11: "service not compatible with the device type",
    ResponseCode.E12: "invalid request or command variant",
    ResponseCode.E19: "device does not exist in the inventory",
    ResponseCode.E20: "unable to communicate with the device",
    ResponseCode.E21: "no response from the device",
    ResponseCode.E30: "future-dated command timed out",
    ResponseCode.H1: "malformed message: undecodable, wrong types, unknown or missing fields",
    ResponseCode.H2: "unsupported protocol version",
    ResponseCode.H3: "message larger than the maximum frame size",
    ResponseCode.H4: "request id reused with a different request body",
    ResponseCode.H5: "service outside the hub's scope (evolved smart grid)",
    ResponseCode.H6: "non-domestic meter point not opted in to the hub",
    ResponseCode.H7: "quarantined by anomaly detection; release or delete it",
    ResponseCode.H8: "busy: retry after the given number of seconds",
    ResponseCode.H9: "service not yet executable by this hub release",
    ResponseCode.H10: "response or alert expired undelivered after its hold time",
    ResponseCode.H11: "the device rejected the command; the reason says why",
    ResponseCode.H12: "internal error: nothing was done; resubmit later with the same request id",
}
