"""Signatures on critical commands: the canonical bytes, signing and verifying, the hub's form
check, the key files, and the test vectors of docs/protocol.md (read from the document, so the
document cannot drift from the code)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import given
from hypothesis import strategies as st

from hub import wire
from hub.policies.signatures import signature_refusal
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.wire.signing import (
    P256_ORDER,
    SIGNING_DOMAIN,
    CanonicalFormError,
    canonical_bytes,
    der_signature,
    public_key_der,
    public_key_from_der,
    raw_signature,
    signature_form_problem,
    signed_bytes,
    verify,
)
from sdk.keys import create_keys, fleet_signing_parties, signing_key, signing_keys
from sdk.signing import SigningKey, public_key_path, signing_key_path
from simfield.site import load_trust_anchors

PROTOCOL = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
DEVICE = "00DB1234567890AB"
KEY = SigningKey(ec.derive_private_key(0x1234_5678_9ABC, ec.SECP256R1()))
OTHER = SigningKey(ec.derive_private_key(0x0FED_CBA9_8765, ec.SECP256R1()))


def _vectors() -> dict[str, str]:
    text = PROTOCOL.read_text(encoding="utf-8")
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^```\w+ (vector-[\w-]+)\n(.*?)^```", text, re.M | re.S)
    }


# ---------------------------------------------------------------- canonical bytes


def test_the_signed_bytes_are_the_prefix_and_the_msgpack_of_service_device_and_params() -> None:
    data = signed_bytes("7.2", DEVICE, {})
    assert data.startswith(SIGNING_DOMAIN)
    assert len(SIGNING_DOMAIN) == 28
    assert SIGNING_DOMAIN.endswith(b"\x00")
    assert msgpack.unpackb(data[len(SIGNING_DOMAIN) :]) == ["7.2", DEVICE, {}]


def test_map_entries_are_written_in_the_order_of_their_keys_bytes_at_every_level() -> None:
    one = canonical_bytes({"b": 1, "a": {"z": 1, "y": 2}, "B": [{"q": 1, "p": 2}]})
    two = canonical_bytes({"B": [{"p": 2, "q": 1}], "a": {"y": 2, "z": 1}, "b": 1})
    assert one == two
    assert msgpack.unpackb(one, object_pairs_hook=list)[0][0] == "B"  # "B" < "a" < "b" bytewise


def test_an_integral_float_is_signed_as_the_integer_a_javascript_client_would_send() -> None:
    assert canonical_bytes({"x": 53.0}) == canonical_bytes({"x": 53})
    assert canonical_bytes(53.0) == b"\x35"
    assert canonical_bytes(-1.0) == b"\xff"
    assert canonical_bytes(28.5) == bytes.fromhex("cb403c800000000000")
    assert canonical_bytes(float(2**60)) != canonical_bytes(2**60)  # beyond 2^53: stays a float


def test_booleans_stay_booleans_and_bytes_stay_bin() -> None:
    assert canonical_bytes(True) == b"\xc3"
    assert canonical_bytes(1) == b"\x01"
    assert canonical_bytes(b"ab") == b"\xc4\x02ab"
    assert canonical_bytes("ab") == b"\xa2ab"


def test_a_map_key_that_is_not_text_cannot_be_signed() -> None:
    with pytest.raises(CanonicalFormError):
        canonical_bytes({1: "x"})  # type: ignore[dict-item]


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), _values, max_size=5))
def test_the_signed_bytes_do_not_depend_on_the_order_params_were_built_in(params: dict) -> None:  # type: ignore[type-arg]
    reordered = dict(reversed(list(params.items())))
    assert signed_bytes("1.1.1", DEVICE, params) == signed_bytes("1.1.1", DEVICE, reordered)


# ---------------------------------------------------------------- sign and verify


def test_a_signature_verifies_with_the_signers_public_key_only() -> None:
    params = {"payment_mode": "prepayment"}
    signature = KEY.sign("1.6", DEVICE, params)
    assert len(signature) == 64
    assert verify(KEY.public_key, signature, "1.6", DEVICE, params)
    assert not verify(OTHER.public_key, signature, "1.6", DEVICE, params)


def test_a_signature_does_not_cover_another_service_device_or_parameter() -> None:
    params = {"payment_mode": "prepayment"}
    signature = KEY.sign("1.6", DEVICE, params)
    assert not verify(KEY.public_key, signature, "7.2", DEVICE, params)
    assert not verify(KEY.public_key, signature, "1.6", "00DB1234567890AC", params)
    assert not verify(KEY.public_key, signature, "1.6", DEVICE, {"payment_mode": "credit"})


def test_signing_is_deterministic() -> None:
    assert KEY.sign("7.2", DEVICE, {}) == KEY.sign("7.2", DEVICE, {})


def test_raw_and_der_signatures_convert_both_ways() -> None:
    raw = KEY.sign("7.2", DEVICE, {})
    assert raw_signature(der_signature(raw)) == raw


def test_a_public_key_travels_as_der_and_comes_back() -> None:
    der = public_key_der(KEY.public_key)
    assert len(der) == 91
    assert public_key_from_der(der).public_numbers() == KEY.public_key.public_numbers()
    with pytest.raises(ValueError):
        public_key_from_der(b"\x30" * 32)


def test_the_sdk_fills_in_a_requests_signature() -> None:
    req = wire.ServiceRequest(request_id="r1", role=Role.IS, service="7.2", device_id=DEVICE)
    signed = KEY.sign_request(req)
    assert verify(KEY.public_key, signed.signature, "7.2", DEVICE, {})


# ---------------------------------------------------------------- the hub's form check


def test_the_hub_refuses_an_unsigned_critical_command_with_e12() -> None:
    refusal = signature_refusal(CATALOGUE["7.2"], b"")
    assert refusal is not None
    assert refusal[0] is ResponseCode.E12
    assert "must be signed" in refusal[1]


@pytest.mark.parametrize(
    "signature",
    [b"kid:SUPA:x", b"\x01" * 63, b"\x01" * 65, b"\x00" * 64, P256_ORDER.to_bytes(32, "big") * 2],
)
def test_the_hub_refuses_a_signature_not_of_the_form_r_s_with_e12(signature: bytes) -> None:
    assert signature_form_problem(signature) is not None
    refusal = signature_refusal(CATALOGUE["7.2"], signature)
    assert refusal is not None
    assert refusal[0] is ResponseCode.E12


def test_the_hub_passes_a_well_formed_signature_and_ignores_one_on_a_non_critical_service() -> None:
    assert signature_refusal(CATALOGUE["7.2"], KEY.sign("7.2", DEVICE, {})) is None
    assert signature_refusal(CATALOGUE["4.1.1"], b"") is None
    assert signature_refusal(CATALOGUE["4.1.1"], b"anything") is None


# ---------------------------------------------------------------- key files


def test_create_keys_gives_every_party_that_may_send_a_critical_command_a_key_pair(
    tmp_path: Path,
) -> None:
    from simfield.fleet import generate_fleet
    from simfield.fleet_dir import load_fleet
    from simfield.fleet_files import write_fleet
    from tests.live_support import today

    write_fleet(generate_fleet(10, 2, today()), tmp_path)
    fleet = load_fleet(tmp_path)
    created = create_keys(tmp_path, sorted(fleet.users))
    parties = fleet_signing_parties(tmp_path)
    signers = {u.party_id for u in fleet.users.values() if u.roles & {Role.IS, Role.GS, Role.ED}}
    assert signers
    assert signers <= set(parties)
    assert not any(
        u.party_id in parties for u in fleet.users.values() if u.roles <= {Role.RSA, Role.OU}
    )
    assert {f"signing:{p}" for p in parties} <= set(created)
    keys_dir = tmp_path / "keys"
    for party in parties:
        assert signing_key_path(keys_dir, party).stat().st_mode & 0o077 == 0
        public = load_pem_public_key(public_key_path(keys_dir, party).read_bytes())
        assert public.public_numbers() == signing_key(tmp_path, party).public_key.public_numbers()  # type: ignore[union-attr]
    anchors = load_trust_anchors(tmp_path)
    assert set(anchors) == set(parties) == set(signing_keys(tmp_path))
    assert create_keys(tmp_path, sorted(fleet.users)) == []  # kept, not replaced


def test_a_fleet_without_users_gets_no_signing_keys(tmp_path: Path) -> None:
    create_keys(tmp_path, ["alice"])
    assert load_trust_anchors(tmp_path) == {}


# ---------------------------------------------------------------- the protocol's test vector


def test_the_protocols_test_vector_holds() -> None:
    vectors = _vectors()
    key = SigningKey.from_pem(vectors["vector-private-key"].encode())
    public = load_pem_public_key(vectors["vector-public-key"].encode())
    assert public.public_numbers() == key.public_key.public_numbers()  # type: ignore[union-attr]
    request = json.loads(vectors["vector-request"])
    expected = bytes.fromhex("".join(vectors["vector-signed-bytes"].split()))
    signature = bytes.fromhex("".join(vectors["vector-signature"].split()))
    service, device_id, params = request["service"], request["device_id"], request["params"]
    assert signed_bytes(service, device_id, params) == expected
    assert verify(key.public_key, signature, service, device_id, params)
    assert key.sign(service, device_id, params) == signature  # RFC 6979: reproducible
    assert SIGNING_DOMAIN.hex() in PROTOCOL.read_text(encoding="utf-8")
