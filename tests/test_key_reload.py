"""Keys registered or revoked while the hub runs take effect without a restart, and every
refused handshake is kept (bounded) with its key's fingerprint and the peer's address. Real
ZeroMQ sockets with CURVE on a random loopback port, the real ZAP authenticator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth

from actors.security import (
    KeyChange,
    KeyChangeKind,
    UserKeyAuthenticator,
    fingerprint,
)
from hub.reference.parties import User, UserStatus
from hub.reference.roles import Role
from sdk.keys import create_keys, hub_keypair, keys_dir
from tests.live_support import wait_until

pytestmark = pytest.mark.timeout(60)


def _user(user_id: str, status: UserStatus = UserStatus.ACTIVE) -> User:
    return User(user_id, f"P{user_id}", user_id.title(), frozenset({Role.IS}), status)


@pytest.fixture
def world(
    tmp_path: Path,
) -> Iterator[tuple[zmq.Context[zmq.Socket[bytes]], UserKeyAuthenticator, zmq.Socket[bytes], str]]:
    create_keys(tmp_path, ["alice"])
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = UserKeyAuthenticator(ctx, tmp_path, {"alice": _user("alice"), "bob": _user("bob")})
    auth.start()
    server = ctx.socket(zmq.ROUTER)
    keys = hub_keypair(tmp_path)
    server.curve_server = True
    server.curve_publickey = keys.public
    server.curve_secretkey = keys.secret
    server.linger = 0
    port = server.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield ctx, auth, server, f"tcp://127.0.0.1:{port}"
    finally:
        server.close(0)
        auth.stop()
        ctx.term()


def _say_hello(
    ctx: zmq.Context[zmq.Socket[bytes]],
    endpoint: str,
    server_public: bytes,
    keydir: Path,
    name: str,
) -> zmq.Socket[bytes]:
    public, secret = zmq.auth.load_certificate(str(keydir / f"{name}.key_secret"))
    assert secret is not None
    s = ctx.socket(zmq.DEALER)
    s.curve_serverkey = server_public
    s.curve_publickey = public
    s.curve_secretkey = secret
    s.linger = 0
    s.connect(endpoint)
    s.send(b"hello")
    return s


def _received(server: zmq.Socket[bytes], timeout_ms: int) -> list[bytes] | None:
    if server.poll(timeout_ms):
        return server.recv_multipart()
    return None


def test_a_key_registered_while_running_connects_and_a_revoked_one_is_refused(
    world: tuple[zmq.Context[zmq.Socket[bytes]], UserKeyAuthenticator, zmq.Socket[bytes], str],
    tmp_path: Path,
) -> None:
    ctx, auth, server, endpoint = world
    hub_public = hub_keypair(tmp_path).public
    outside = tmp_path / "bob-made-his-own"
    outside.mkdir()
    zmq.auth.create_certificates(str(outside), "bob")  # bob generates his own pair

    first = _say_hello(ctx, endpoint, hub_public, outside, "bob")
    wait_until(lambda: auth.refused == 1, 20, "bob's unregistered key refused")
    refused = auth.drain_refused()
    bob_public, _ = zmq.auth.load_certificate(str(outside / "bob.key"))
    assert [r.fingerprint for r in refused] == [fingerprint(bob_public)]
    assert refused[0].address == "127.0.0.1"
    first.close(0)

    (keys_dir(tmp_path) / "users" / "bob.key").write_bytes((outside / "bob.key").read_bytes())
    assert auth.reload() == [KeyChange("bob", fingerprint(bob_public), KeyChangeKind.REGISTERED)]
    assert auth.reload() == []  # each change is reported once
    second = _say_hello(ctx, endpoint, hub_public, outside, "bob")
    frames = _received(server, 20_000)
    assert frames is not None
    assert frames[-1] == b"hello"
    second.close(0)

    (keys_dir(tmp_path) / "users" / "bob.key").unlink()
    assert auth.reload() == [KeyChange("bob", fingerprint(bob_public), KeyChangeKind.REVOKED)]
    assert not auth.holds("bob", bob_public)
    third = _say_hello(ctx, endpoint, hub_public, outside, "bob")
    wait_until(lambda: auth.refused == 2, 20, "bob's revoked key refused")
    assert _received(server, 200) is None
    third.close(0)


def test_refused_handshakes_kept_for_audit_are_bounded_and_the_rest_counted(
    tmp_path: Path,
) -> None:
    create_keys(tmp_path, [])
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = UserKeyAuthenticator(ctx, tmp_path, {}, max_refusals=3)
    try:
        for i in range(5):
            assert not auth.callback("*", f"{i:040d}".encode())
        assert auth.refused == 5
        assert auth.refusals_dropped == 2
        assert len(auth.drain_refused()) == 3
        assert auth.drain_refused() == []
    finally:
        ctx.term()


def test_a_suspended_users_key_is_refused_although_registered(tmp_path: Path) -> None:
    create_keys(tmp_path, ["carol"])
    public, _ = zmq.auth.load_certificate(str(keys_dir(tmp_path) / "users" / "carol.key"))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = UserKeyAuthenticator(ctx, tmp_path, {"carol": _user("carol", UserStatus.SUSPENDED)})
    try:
        assert not auth.callback("*", public)
        assert auth.holds("carol", public)
    finally:
        ctx.term()


def test_on_a_running_hub_a_new_key_is_served_a_revoked_one_is_cut_off_and_both_are_audited(
    tmp_path: Path,
) -> None:
    from contextlib import closing

    from actors.live import HubSettings, LiveHub
    from actors.store import open_store
    from sdk.client import HubClient
    from sdk.keys import KeyPair
    from tests.live_support import make_fleet, supplier_meter

    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=40, seed=5)
    user, meter = supplier_meter(fleet)
    users_dir = keys_dir(fleet_dir) / "users"
    for name in (f"{user}.key", f"{user}.key_secret"):  # the user starts without a key
        (users_dir / name).rename(tmp_path / name)
    own = tmp_path / "own"
    own.mkdir()
    zmq.auth.create_certificates(str(own), user)  # and generates a pair of its own
    public, secret = zmq.auth.load_certificate(str(own / f"{user}.key_secret"))
    assert secret is not None
    settings = HubSettings(
        fleet_dir=fleet_dir, data_dir=tmp_path / "data", endpoint="tcp://127.0.0.1:0", tick_s=0.1
    )
    hub = LiveHub(settings, fleet).start()
    clients: list[HubClient] = []
    try:
        hub_public = hub_keypair(fleet_dir).public
        early = HubClient(hub.endpoint, hub_public, KeyPair(public, secret))
        clients.append(early)
        early.submit("k-0", Role.IS, "4.1.1", meter.device_id)
        wait_until(lambda: hub.handshakes_refused >= 1, 20, "the unregistered key refused")

        (users_dir / f"{user}.key").write_bytes((own / f"{user}.key").read_bytes())

        def audited(kind: str) -> bool:
            with closing(open_store(settings.data_dir, read_only=True)) as store:
                return any(r.kind.value == kind for r in store.audit_records(limit=100_000))

        # libzmq does not retry a handshake the hub refused: connect once the hub has the key
        wait_until(lambda: audited("key_registered"), 20, "the new key registered")
        client = HubClient(hub.endpoint, hub_public, KeyPair(public, secret))
        clients.append(client)
        client.connect(20)  # the running hub picked the key up
        assert client.request(Role.IS, "4.1.1", meter.device_id).code.value == "I99"

        (users_dir / f"{user}.key").unlink()
        refused = None
        for _ in range(100):  # until the hub's next tick has re-read the key directory
            answer = client.request(Role.IS, "4.1.1", meter.device_id)
            if answer.code.value == "E1":
                refused = answer
                break
        assert refused is not None
        assert "revoked" in refused.reason
    finally:
        for c in clients:
            c.close()
        hub.stop()
    with closing(open_store(settings.data_dir, read_only=True)) as store:
        kinds = [r.kind.value for r in store.audit_records(limit=100_000)]
        refusal = next(
            r for r in store.audit_records(limit=100_000) if r.kind.value == "handshake_refused"
        )
    assert "key_registered" in kinds
    assert "key_revoked" in kinds
    assert fingerprint(public) in refusal.reason
    assert "127.0.0.1" in refusal.reason


def test_a_key_revoked_between_the_check_and_the_user_id_still_gets_an_id_and_no_exception(
    tmp_path: Path,
) -> None:
    from zmq.utils import z85

    create_keys(tmp_path, ["dave"])
    public, _ = zmq.auth.load_certificate(str(keys_dir(tmp_path) / "users" / "dave.key"))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = UserKeyAuthenticator(ctx, tmp_path, {"dave": _user("dave")})
    try:
        assert auth.callback("*", public)
        (keys_dir(tmp_path) / "users" / "dave.key").unlink()
        assert auth.reload()[0].kind is KeyChangeKind.REVOKED
        zap_id = auth.curve_user_id(z85.decode(public))  # the ZAP thread's next question
        assert zap_id == f"dave/{fingerprint(public)}"
        assert not auth.current("dave", fingerprint(public))  # so its frames are refused E1
    finally:
        ctx.term()
