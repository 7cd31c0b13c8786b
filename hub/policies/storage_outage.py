"""How the hub answers frames while its store takes no writes (a storage outage).

Decides, for one frame received during an outage, without the engine and without the store:
a service request (or a frame too broken to read) is answered H8 busy, saying storage is
unavailable, with a ``retry_after_s`` and the request id when one is readable, and nothing
else is done (the request id is not remembered, so a resubmission is decided afresh once the
store works); a control message (Hello, DeliveryAck, a quarantine decision, thresholds) is
kept for the engine rebuilt from the store when it works again.
Must never: open a socket or a file, read a clock, or decide anything that would need a
record written (nothing is audited here: the driver counts these answers and audits the
outage as a whole once the store works).
"""

from __future__ import annotations

from hub import wire
from hub.reference.codes import ResponseCode

UNAVAILABLE_REASON = "storage unavailable: the hub cannot write its store, so nothing was done"
"""The reason of every H8 answered during a storage outage (documented in docs/protocol.md)."""


def answer_during_outage(frame: bytes, retry_after_s: float) -> bytes | None:
    """The encoded H8 answer to a frame received while the store takes no writes, or None
    for a control message, to be handed to the engine once the store works again."""
    try:
        msg = wire.decode_from_user(frame)
    except wire.WireError as err:
        request_id = err.request_id
    else:
        if not isinstance(msg, wire.ServiceRequest):
            return None
        request_id = msg.request_id
    return wire.encode(
        wire.Refusal(
            request_id=request_id,
            code=ResponseCode.H8,
            reason=f"{UNAVAILABLE_REASON}; retry after {retry_after_s:g} s",
            retry_after_s=retry_after_s,
        )
    )


def busy_instead_of(answer: bytes, retry_after_s: float) -> bytes | None:
    """The H8 that replaces an answer of a batch the store failed to write (an I99, or a
    refusal that was to be remembered, are void with it), or None for a Welcome: its Hello
    is said again to the engine rebuilt from the store."""
    msg = wire.decode_from_hub(answer)
    if not isinstance(msg, wire.Acknowledgement | wire.Refusal):
        return None
    return wire.encode(
        wire.Refusal(
            request_id=msg.request_id,
            code=ResponseCode.H8,
            reason=f"{UNAVAILABLE_REASON}; retry after {retry_after_s:g} s",
            retry_after_s=retry_after_s,
        )
    )
