"""Key onboarding as the protocol says: a user generates its own pair, the operator registers
the public key, revokes it, lists them; driven as a person would, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq

from actors.security import fingerprint, user_public_keys
from sdk.keys import keys_dir
from tests.test_cli_errors import assert_user_error, dcc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    directory = tmp_path / "fleet"
    assert (
        dcc("fleet", "generate", "--sites", "20", "--seed", "4", "--out", str(directory)).returncode
        == 0
    )
    return directory


def _a_user(fleet: Path) -> str:
    return (fleet / "users.csv").read_text().splitlines()[1].split(",")[0]


def test_a_public_key_a_user_generated_is_registered_listed_and_revoked(fleet: Path) -> None:
    user = _a_user(fleet)
    public, _secret = zmq.curve_keypair()  # the user's own pair: the secret never leaves it
    key = public.decode()

    done = dcc(
        "keys", "register", "--fleet", str(fleet), "--user", user, "--public-key", key, "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fingerprint"] == fingerprint(key)
    assert user_public_keys(fleet) == {public: user}

    listed = json.loads(dcc("keys", "list", "--fleet", str(fleet), "--json").stdout)
    assert listed == [{"user": user, "fingerprint": fingerprint(key), "public_key": key}]

    again = dcc("keys", "register", "--fleet", str(fleet), "--user", user, "--public-key", key)
    assert_user_error(again, 2, "already has a registered key")

    gone = dcc("keys", "revoke", "--fleet", str(fleet), "--user", user, "--json")
    assert gone.returncode == 0, gone.stderr
    assert user_public_keys(fleet) == {}
    assert [p.name.startswith(f"{user}-") for p in (keys_dir(fleet) / "revoked").iterdir()] == [
        True
    ]


def test_a_malformed_key_or_an_unknown_user_is_refused_and_nothing_is_written(fleet: Path) -> None:
    user = _a_user(fleet)
    short = dcc("keys", "register", "--fleet", str(fleet), "--user", user, "--public-key", "abc")
    assert_user_error(short, 2, "40 characters")
    public, _ = zmq.curve_keypair()
    stranger = dcc(
        "keys",
        "register",
        "--fleet",
        str(fleet),
        "--user",
        "u-nobody",
        "--public-key",
        public.decode(),
    )
    assert stranger.returncode == 2
    assert not (keys_dir(fleet) / "users").exists() or user_public_keys(fleet) == {}


def test_revoking_a_user_without_a_key_says_how_to_see_the_keys(fleet: Path) -> None:
    assert_user_error(
        dcc("keys", "revoke", "--fleet", str(fleet), "--user", _a_user(fleet)), 2, "dcc keys list"
    )
