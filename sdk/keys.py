"""CURVE key pairs and the key directory's layout, shared by the SDK and the hub.

Decides: where a fleet's key files live (``keys/hub.key_secret``, ``keys/users/<id>.key``) and
how a pair is read from a pyzmq certificate file. Must never: decide who a key belongs to
(the hub's authenticator does) or create keys for anyone but the caller's own tools.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

HUB_KEY_NAME = "hub"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair, Z85-encoded."""

    public: bytes
    secret: bytes


def keys_dir(data_dir: Path) -> Path:
    """Where a fleet's key files live."""
    return data_dir / "keys"


def create_keys(data_dir: Path, user_ids: Iterable[str], overwrite: bool = False) -> list[str]:
    """Create the hub's key pair and one per user (pyzmq certificate files); existing ones
    are kept unless ``overwrite``. Returns the names created."""
    kdir = keys_dir(data_dir)
    (kdir / "users").mkdir(parents=True, exist_ok=True)
    created = []
    for name, where in [(HUB_KEY_NAME, kdir)] + [(u, kdir / "users") for u in user_ids]:
        if overwrite or not (where / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(str(where), name)
            created.append(name)
    return created


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
