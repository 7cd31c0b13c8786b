"""Request fingerprints: the digest that tells a resubmission from a reused request id.

Decides: which parts of a service request its fingerprint covers and how they are made
canonical, so that map key order cannot matter.
Must never: change how a fingerprint is computed without a new personalisation: stored
fingerprints must stay comparable across processes and releases.
"""

from __future__ import annotations

import hashlib

import msgpack

from hub.reference.standard import Value
from hub.wire.limits import FINGERPRINT_BYTES
from hub.wire.messages import ServiceRequest

_FINGERPRINT_PERSON = b"dcc-hub-req-v1"


def request_fingerprint(req: ServiceRequest) -> bytes:
    """A stable 32-byte digest of everything a request asks for.

    Equal for the same request id, role, service, device, params (whatever their map key order),
    execution time and signature; different when any of them differs. The hub stores it with
    the request id to tell a resubmission (same fingerprint) from reuse of the id (H4). Stable
    across processes and releases: changing how it is computed needs a new personalisation.
    """
    canonical = [
        req.request_id,
        req.role.value,
        req.service,
        req.device_id,
        _canonical(req.params),
        None if req.execute_at is None else float(req.execute_at),
        req.signature,
    ]
    packed: bytes = msgpack.packb(canonical, use_bin_type=True)
    digest = hashlib.blake2b(packed, digest_size=FINGERPRINT_BYTES, person=_FINGERPRINT_PERSON)
    return digest.digest()


def _canonical(value: Value) -> Value:
    """The same value with every map's keys in sorted order, so key order cannot matter."""
    if type(value) is dict:
        return {key: _canonical(value[key]) for key in sorted(value)}
    if type(value) is list:
        return [_canonical(item) for item in value]
    return value
