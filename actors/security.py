"""CURVE keys and the ZAP authenticator that maps a client's public key to a service user.

Decides: where key files live, and which CURVE public keys may connect (registered, active
users only); refusals happen at the handshake and are counted.
Must never: trust a user id from a message body; the id comes from the authenticated key.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from hub.reference.parties import User, UserStatus
from sdk.keys import (
    keys_dir,
)


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
