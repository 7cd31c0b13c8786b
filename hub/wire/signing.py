"""What a signature on a critical command covers, byte for byte, and what a signature is.

Decides: the canonical bytes a user signs for a critical command (a fixed domain-separation
prefix, then the msgpack encoding of ``[service, device_id, params]`` with the canonical rules
below), the signature's form (ECDSA over P-256 with SHA-256, sent as the 64 bytes ``r || s``,
each a 32-byte big-endian integer in ``[1, n-1]``), how a signature is verified against a
public key, and where a fleet directory keeps signing key files (names only).
Must never: open a file, read a clock, draw randomness, or decide who may send what (access
control does); signing with a private key is the SDK's, holding trust anchors the devices'.

Canonical rules (so that a Java, Go or JavaScript client reproduces the bytes exactly):
- a map's keys are text; entries are written in the order of their keys' UTF-8 bytes;
- a number with an integral value (an integer, or a float such as ``12.0`` whose magnitude is
  at most 2^53 - 1) is written as a msgpack integer in its shortest form; any other number as
  a float64 (JavaScript's single number type cannot tell ``12`` from ``12.0``, so neither may
  the signature);
- text is ``str`` (shortest form), bytes are ``bin``, ``true``/``false`` and ``nil`` as such,
  lists as arrays (shortest form).

Not signed: the request id and ``execute_at``. The hub holds a DSP future-dated command and
releases it at its time, so the device never sees the user's ``execute_at``; what the device
does (service, device, parameters) is what the signature binds.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from hub.reference.standard import Value

SIGNING_DOMAIN = b"DCC-HUB critical command v1\x00"
"""The prefix of every signed message: 27 ASCII bytes and a zero byte."""
SIGNATURE_BYTES = 64
"""A signature is ``r || s``, 32 big-endian bytes each."""
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order n of the P-256 group: r and s lie in [1, n-1]."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Floats with an integral value up to this magnitude are signed as integers."""
SIGNING_KEYS_DIR = "signing"
"""Under a fleet's key directory: ``signing/<party id>.pem`` and ``<party id>.pub.pem``."""
PRIVATE_KEY_SUFFIX = ".pem"
"""A party's private signing key: PKCS#8 PEM, unencrypted."""
PUBLIC_KEY_SUFFIX = ".pub.pem"
"""A party's public signing key: SubjectPublicKeyInfo PEM."""

_ECDSA = ec.ECDSA(hashes.SHA256())


class CanonicalFormError(ValueError):
    """A value cannot be put in canonical form (a map key that is not text, an unknown type)."""


def _canonical(value: object) -> object:
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return int(value)
        return value
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        items: list[tuple[bytes, str, object]] = []
        for key, v in value.items():
            if not isinstance(key, str):
                raise CanonicalFormError(f"map keys must be text, not {type(key).__name__}")
            items.append((key.encode(), key, _canonical(v)))
        items.sort(key=lambda item: item[0])
        return {key: v for _, key, v in items}
    raise CanonicalFormError(f"cannot sign a value of type {type(value).__name__}")


def canonical_bytes(value: Value | Mapping[str, Value] | list[Value]) -> bytes:
    """The canonical msgpack encoding of ``value`` (rules in the module docstring)."""
    packed: bytes = msgpack.packb(_canonical(value), use_bin_type=True, use_single_float=False)
    return packed


def signed_bytes(service: str, device_id: str, params: Mapping[str, Value]) -> bytes:
    """The exact bytes a user signs for a critical command: ``SIGNING_DOMAIN`` followed by the
    canonical encoding of ``[service, device_id, params]``."""
    return SIGNING_DOMAIN + canonical_bytes([service, device_id, dict(params)])


def signature_form_problem(signature: bytes) -> str | None:
    """Why ``signature`` is not of the form a signature must have, or None."""
    if len(signature) != SIGNATURE_BYTES:
        return (
            f"the signature must be {SIGNATURE_BYTES} bytes (r || s of ECDSA P-256), "
            f"not {len(signature)}"
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        return "the signature's r and s must each lie between 1 and the P-256 group order - 1"
    return None


def raw_signature(der: bytes) -> bytes:
    """A DER-encoded ECDSA signature (what most libraries produce) as the 64 bytes r || s."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def der_signature(raw: bytes) -> bytes:
    """The 64 bytes r || s as a DER-encoded ECDSA signature (what most libraries verify)."""
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def verify(
    public_key: ec.EllipticCurvePublicKey,
    signature: bytes,
    service: str,
    device_id: str,
    params: Mapping[str, Value],
) -> bool:
    """Whether ``signature`` is ``public_key``'s valid signature over the command."""
    if signature_form_problem(signature) is not None:
        return False
    try:
        message = signed_bytes(service, device_id, params)
        public_key.verify(der_signature(signature), message, _ECDSA)
    except (InvalidSignature, CanonicalFormError):
        return False
    return True


def public_key_from_der(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its DER SubjectPublicKeyInfo (as 6.15.1 and 6.23 carry it);
    ``ValueError`` if the bytes are not one."""
    key = serialization.load_der_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the key is not an ECDSA P-256 public key")
    return key


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    """A public key as DER SubjectPublicKeyInfo (91 bytes for P-256)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
