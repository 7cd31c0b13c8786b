"""CURVE key pairs, signing key pairs and the key directory's layout, shared by the SDK and
the hub.

Decides: where a fleet's key files live (``keys/hub.key_secret``, ``keys/users/<id>.key``,
``keys/signing/<party id>.pem`` and ``.pub.pem``), which parties get a signing key pair (every
party with a user whose roles may send a critical service), and how a CURVE pair is read from a
pyzmq certificate file. Must never: decide who a key belongs to (the hub's authenticator does)
or create keys for anyone but the caller's own tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import Role
from hub.registers.records import USERS_FILE, parse_users
from hub.wire.signing import PRIVATE_KEY_SUFFIX, PUBLIC_KEY_SUFFIX, SIGNING_KEYS_DIR
from sdk.signing import SigningKey, signing_key_path, write_signing_key

HUB_KEY_NAME = "hub"
SIGNING_ROLES: frozenset[Role] = frozenset(
    role for service in CATALOGUE.services() if service.critical for role in service.roles
)
"""Roles the catalogue lets send a critical command: their parties sign with a key pair."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair, Z85-encoded."""

    public: bytes
    secret: bytes


def keys_dir(data_dir: Path) -> Path:
    """Where a fleet's key files live."""
    return data_dir / "keys"


def create_keys(
    data_dir: Path,
    user_ids: Iterable[str],
    overwrite: bool = False,
    signing_parties: Iterable[str] | None = None,
) -> list[str]:
    """Create the hub's key pair and one per user (pyzmq certificate files), and a signing key
    pair per party in ``signing_parties`` (by default every signing party of the fleet's
    ``users.csv``, when ``data_dir`` holds one); existing ones are kept unless ``overwrite``.
    Returns the names created (a signing pair as ``signing:<party id>``)."""
    kdir = keys_dir(data_dir)
    (kdir / "users").mkdir(parents=True, exist_ok=True)
    created = []
    for name, where in [(HUB_KEY_NAME, kdir)] + [(u, kdir / "users") for u in user_ids]:
        if overwrite or not (where / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(where), name)
            created.append(name)
    parties = signing_parties if signing_parties is not None else fleet_signing_parties(data_dir)
    for party in sorted(set(parties)):
        if overwrite or not signing_key_path(kdir, party).exists():
            write_signing_key(kdir, party, SigningKey.generate())
            created.append(f"signing:{party}")
    return created


def fleet_signing_parties(data_dir: Path) -> list[str]:
    """The party ids of a fleet's users whose roles may send a critical service (none when the
    directory holds no ``users.csv``)."""
    path = data_dir / USERS_FILE
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        users = parse_users(fh, str(path))
    return sorted({u.party_id for u in users.values() if u.roles & SIGNING_ROLES})


def signing_keys(data_dir: Path) -> dict[str, SigningKey]:
    """Every party's private signing key in a fleet's key directory, by party id (for tools
    that play all the fleet's parties: the simulator's workload, the demo)."""
    folder = keys_dir(data_dir) / SIGNING_KEYS_DIR
    return {
        path.name.removesuffix(PRIVATE_KEY_SUFFIX): SigningKey.load(path)
        for path in sorted(folder.glob(f"*{PRIVATE_KEY_SUFFIX}"))
        if not path.name.endswith(PUBLIC_KEY_SUFFIX)
    }


def signing_key(data_dir: Path, party_id: str) -> SigningKey:
    """A party's private signing key from a fleet's key directory."""
    return SigningKey.load(signing_key_path(keys_dir(data_dir), party_id))


def load_keypair(path: Path) -> KeyPair:
    """Load a key pair from a pyzmq ``.key_secret`` certificate file."""
    if not path.exists():
        raise FileNotFoundError(f"no key file {path}; run 'dcc keys' first")
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise ValueError(f"{path} holds no secret key")
    return KeyPair(public, secret)


def hub_keypair(data_dir: Path) -> KeyPair:
    """The hub's own key pair."""
    return load_keypair(keys_dir(data_dir) / f"{HUB_KEY_NAME}.key_secret")


def user_keypair(data_dir: Path, user_id: str) -> KeyPair:
    """A user's key pair (what an integrator is handed)."""
    return load_keypair(keys_dir(data_dir) / "users" / f"{user_id}.key_secret")
