"""The hub's check of the signature on a critical command, before the command is sent.

Decides: whether a request's signature has the form a signature must have (present for a
critical service; exactly the 64 bytes ``r || s`` of ECDSA P-256 with r and s in range, per
``hub.wire.signing``), refusing with E12 (invalid request) and a reason a person can act on.
The hub does not verify the signature itself: as in the domain reference, the device verifies
it with the trust anchor it holds (the registered supplier's key, replaced by change of
supplier); the hub holds no trust anchors and could not know which key a device holds.
A signature on a non-critical service is not needed and is ignored.
Must never: verify with a key, read a clock, or decide access (``hub.policies.access`` does).
"""

from __future__ import annotations

from hub.reference.catalogue import Service
from hub.reference.codes import ResponseCode
from hub.wire.signing import signature_form_problem


def signature_refusal(service: Service, signature: bytes) -> tuple[ResponseCode, str] | None:
    """The code and reason to refuse a request for ``service`` carrying ``signature``, or
    None when its signature is acceptable to send on."""
    if not service.critical:
        return None
    if not signature:
        return ResponseCode.E12, f"{service.code} is critical and must be signed"
    problem = signature_form_problem(signature)
    if problem is not None:
        return ResponseCode.E12, f"{service.code} is critical: {problem}"
    return None
