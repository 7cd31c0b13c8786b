"""Signing critical commands with a party's private key, and that key's files.

Decides: how a signing key pair is generated, written and read (``keys/signing/<party
id>.pem``, PKCS#8 PEM, and ``<party id>.pub.pem``, SubjectPublicKeyInfo PEM, in a fleet's key
directory), and how a request is signed: ECDSA P-256 with SHA-256 over
``hub.wire.signing.signed_bytes``, deterministic (RFC 6979), sent as the 64 bytes ``r || s``.
Must never: define what is signed (``hub.wire.signing`` does) or hold anyone's key but the
caller's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub import wire
from hub.reference.standard import Value
from hub.wire.signing import (
    PRIVATE_KEY_SUFFIX,
    PUBLIC_KEY_SUFFIX,
    SIGNING_KEYS_DIR,
    public_key_der,
    raw_signature,
    signed_bytes,
)

_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


class SigningKey:
    """A party's private signing key (ECDSA P-256)."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("a signing key must be an ECDSA P-256 key")
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        """A new random key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """A key from its PKCS#8 (or SEC1) PEM text; ``ValueError`` if it is not a P-256 key."""
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the PEM does not hold an ECDSA private key")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """A key from a PEM file."""
        if not path.exists():
            raise FileNotFoundError(f"no signing key file {path}; run 'dcc keys' first")
        return cls.from_pem(path.read_bytes())

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, which devices hold as a trust anchor."""
        return self._key.public_key()

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_der(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo (the ``certificate`` of 6.15.1, 6.23)."""
        return public_key_der(self.public_key)

    def sign(self, service: str, device_id: str, params: Mapping[str, Value]) -> bytes:
        """The signature (64 bytes r || s, deterministic) over a critical command."""
        der = self._key.sign(signed_bytes(service, device_id, params), _DETERMINISTIC)
        return raw_signature(der)

    def sign_request(self, req: wire.ServiceRequest) -> wire.ServiceRequest:
        """``req`` with its signature filled in (it must name a device)."""
        if req.device_id is None:
            raise ValueError("only a command for a device can be signed")
        signature = self.sign(req.service, req.device_id, req.params)
        return dataclasses.replace(req, signature=signature)


def signing_key_path(keys_dir: Path, party_id: str) -> Path:
    """Where a party's private signing key lives in a key directory."""
    return keys_dir / SIGNING_KEYS_DIR / f"{party_id}{PRIVATE_KEY_SUFFIX}"


def public_key_path(keys_dir: Path, party_id: str) -> Path:
    """Where a party's public signing key lives in a key directory."""
    return keys_dir / SIGNING_KEYS_DIR / f"{party_id}{PUBLIC_KEY_SUFFIX}"


def write_signing_key(keys_dir: Path, party_id: str, key: SigningKey) -> None:
    """Write a party's key pair (the private file readable by its owner only)."""
    private = signing_key_path(keys_dir, party_id)
    private.parent.mkdir(parents=True, exist_ok=True)
    private.touch(mode=0o600, exist_ok=True)
    private.write_bytes(key.private_pem())
    public_key_path(keys_dir, party_id).write_bytes(key.public_pem())
