"""CURVE keys and the ZAP authenticator that maps a client's public key to a service user.

Decides: where key files live, and which CURVE public keys may connect (registered, active
users only); refusals happen at the handshake and are counted.
Must never: trust a user id from a message body; the id comes from the authenticated key.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from hub.parties import User, UserStatus

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


def user_public_keys(data_dir: Path) -> dict[bytes, str]:
    """Public key (Z85) -> user id, from the users' public certificate files."""
    out = {}
    for path in sorted((keys_dir(data_dir) / "users").glob("*.key")):
        public, _ = zmq.auth.load_certificate(str(path))
        out[public] = path.stem
    return out


class UserKeyAuthenticator(ThreadAuthenticator):
    """ZAP handler: a client's key must belong to an active registered user; the ZAP user id
    it returns is that user's id, which the front door reads from every frame."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        keys: dict[bytes, str],
        users: dict[str, User],
    ) -> None:
        super().__init__(context)
        self._keys = dict(keys)
        self._users = users
        self._lock = threading.Lock()
        self.refused = 0
        """Handshakes refused (unknown or inactive keys)."""
        self._refused_keys: deque[str] = deque(maxlen=10_000)

    def start(self) -> None:
        """Start the ZAP thread and install the key check for every domain."""
        super().start()
        self.configure_curve_callback(domain="*", credentials_provider=self)

    def callback(self, domain: str, z85_key: bytes) -> bool:
        """Called by the ZAP thread for each CURVE handshake."""
        user_id = self._keys.get(z85_key)
        user = self._users.get(user_id) if user_id else None
        ok = user is not None and user.status is UserStatus.ACTIVE
        if not ok:
            with self._lock:
                self.refused += 1
                self._refused_keys.append(z85_key.decode("ascii", "replace")[:12])
        return ok

    def drain_refused(self) -> list[str]:
        """Short fingerprints of the keys refused since the last call (for security
        monitoring; bounded, oldest dropped first)."""
        with self._lock:
            keys = list(self._refused_keys)
            self._refused_keys.clear()
        return keys

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The ZAP user id for a key: the registered user's id."""
        return self._keys[z85.encode(client_public_key)]
