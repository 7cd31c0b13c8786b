"""The protocol's example clients (docs/examples/) are tests: each runs as a subprocess, first
against the test vectors of docs/protocol.md section 13, then against a live hub on a random
loopback port serving a fleet made here. The Python client needs only pyzmq, msgpack and
cryptography; the Node.js client is installed with ``npm ci`` into pytest's cache directory
(never into docs/examples/node) and is skipped, with the reason, when node or the npm registry
is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from actors.live import HubSettings, LiveHub
from hub.wire.signing import signed_bytes
from sdk.client import HubClient
from sdk.keys import hub_keypair, keys_dir, user_keypair
from sdk.signing import signing_key_path
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"
NODE_FILES = ("package.json", "package-lock.json", "client.mjs")
RUN_TIMEOUT_S = 180


def _vector(label: str) -> str:
    """A fenced block of docs/protocol.md, found by its label (e.g. ``hex vector-signature``)."""
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    found = re.search(r"```" + re.escape(label) + r"\n(.*?)```", text, re.S)
    assert found is not None, f"docs/protocol.md has no block {label!r}"
    return found.group(1)


def _hex(label: str) -> bytes:
    return bytes.fromhex("".join(_vector(label).split()))


@pytest.fixture(scope="module")
def vector_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The test vector's private key and request, as the files the examples read."""
    directory = tmp_path_factory.mktemp("vectors")
    key = directory / "vector.pem"
    key.write_text(_vector("pem vector-private-key"), encoding="ascii")
    request = directory / "request.json"
    request.write_text(_vector("json vector-request"), encoding="utf-8")
    return key, request


def _verifies(signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` (r || s) over ``message`` verifies with the vector's public key."""
    public = serialization.load_pem_public_key(_vector("pem vector-public-key").encode("ascii"))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    if len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True


def _run(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run an example; its one line of JSON output (fails with its stderr if it failed)."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode == 0, f"{command[:2]} failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---- the examples as the protocol describes them ---------------------------------------------

EXAMPLE_FILES = (EXAMPLES / "python" / "client.py", EXAMPLES / "node" / "client.mjs")


def test_the_protocols_client_section_links_both_example_clients() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    section = text.split("### Example clients", 1)[1].split("\n## ", 1)[0]
    for path in EXAMPLE_FILES:
        link = f"(examples/{path.parent.name}/{path.name})"
        assert link in section, f"docs/protocol.md does not link {path.name}"
        assert path.is_file()


def test_the_protocol_documents_every_setting_the_examples_read() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    table = text.split("### Example clients", 1)[1].split("\n## ", 1)[0]
    for path in EXAMPLE_FILES:
        source = path.read_text(encoding="utf-8")
        settings = set(re.findall(r"\bDCC_[A-Z0-9_]+", source))
        assert settings, path.name
        for name in sorted(settings):
            assert f"`{name}`" in table, f"{name}, read by {path.name}, is not documented"
        for option in re.findall(r"`(--[a-z-]+)`", table):
            assert option.removeprefix("--") in source, f"{path.name} lacks {option}"


def test_the_node_example_pins_zeromq_6_and_msgpack_in_its_committed_lock_file() -> None:
    package = json.loads((EXAMPLES / "node" / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((EXAMPLES / "node" / "package-lock.json").read_text(encoding="utf-8"))
    wanted = package["dependencies"]
    assert set(wanted) == {"zeromq", "@msgpack/msgpack"}
    assert wanted["zeromq"].split(".")[0].lstrip("^~") == "6"
    assert lock["packages"][""]["dependencies"] == wanted
    for name in wanted:
        assert lock["packages"][f"node_modules/{name}"]["version"] == wanted[name].lstrip("^~")
    ignored = (EXAMPLES / "node" / ".gitignore").read_text(encoding="utf-8").split()
    assert "node_modules/" in ignored  # an `npm ci` there is never committed


def test_the_python_example_imports_nothing_from_this_project() -> None:
    source = (EXAMPLES / "python" / "client.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) ([a-z_]+)", source, re.M))
    project = {"hub", "actors", "sdk", "cli", "simfield", "meters_sim", "tests"}
    assert imported & project == set()
    assert {"zmq", "msgpack", "cryptography"} <= imported


# ---- the two clients -----------------------------------------------------------------------


def _python_client() -> list[str]:
    return [sys.executable, str(EXAMPLES / "python" / "client.py")]


def _npm_unreachable(output: str) -> bool:
    return any(
        word in output
        for word in ("ENOTFOUND", "ETIMEDOUT", "ECONNREFUSED", "EAI_AGAIN", "ECONNRESET", "network")
    )


@pytest.fixture(scope="module")
def node_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    """The Node.js client, installed with ``npm ci`` into the pytest cache (reused while
    package-lock.json is unchanged; a temporary directory when the cache plugin is off); the
    test is skipped when node or the registry is not there."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = re.match(r"v(\d+)", version.stdout.strip())
    if major is None or int(major.group(1)) < 20:
        pytest.skip(f"node 20 or later needed, found {version.stdout.strip() or 'no version'}")
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not found")
    source = EXAMPLES / "node"
    lock = (source / "package-lock.json").read_bytes()
    tag = hashlib.sha256(lock + (source / "package.json").read_bytes()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    work = (
        cache.mkdir(f"node-example-{tag}")
        if cache is not None
        else tmp_path_factory.mktemp(f"node-example-{tag}")
    )
    for name in NODE_FILES:
        shutil.copyfile(source / name, work / name)
    if not (work / "node_modules" / ".installed").exists():
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=work,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm registry unreachable (npm ci timed out)")
        if done.returncode != 0:
            output = done.stdout + done.stderr
            if _npm_unreachable(output):
                pytest.skip("npm registry unreachable")
            pytest.fail(f"npm ci failed:\n{output}")
        (work / "node_modules" / ".installed").write_text(tag, encoding="ascii")
    return [node, str(work / "client.mjs")]


@pytest.fixture(params=["python", "node"])
def client(request: pytest.FixtureRequest) -> list[str]:
    """Each example client in turn."""
    if request.param == "python":
        return _python_client()
    command: list[str] = request.getfixturevalue("node_client")
    return command


# ---- the test vectors ------------------------------------------------------------------------


def test_each_example_signs_the_protocols_test_vector_bytes_with_a_signature_that_verifies(
    client: list[str], vector_files: tuple[Path, Path]
) -> None:
    key, request = vector_files
    result = _run([*client, "--vectors", str(key), str(request)])
    expected = _hex("hex vector-signed-bytes")
    assert bytes.fromhex(result["signed_bytes"]) == expected
    signature = bytes.fromhex(result["signature"])
    assert _verifies(signature, expected)
    assert _verifies(_hex("hex vector-signature"), expected)  # the document's own one too
    assert not _verifies(signature, expected[:-1] + b"\x00")


TRICKY_PARAMS: dict[str, Any] = {
    # integers at every width boundary, both signs (all exact in a JavaScript number)
    "ints": [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1],
    "negatives": [-1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53) + 1],
    # floats: integral ones within 2^53 - 1 are integers; others, and larger ones, float64
    "floats": [0.5, -0.25, 1e-300, 2.0**53, -(2.0**60), 1e300, 12.0, -7.0, 0.0],
    "text": ["", "a" * 31, "b" * 32, "c" * 255, "d" * 256, "\u00e9t\u00e9", "\U0001f600"],
    "flags": [True, False, None],
    "long list": list(range(16)),
    "map of sixteen": {f"k{n:02d}": n for n in range(16)},
    # key order is by UTF-8 bytes: U+FFFD (ef bf bd) before U+1F600 (f0 9f 98 80), which
    # JavaScript's UTF-16 string order would put the other way round
    "\ufffd": 1,
    "\U0001f600": 2,
    "Z": 3,
    "a": {"nested": [{"deeper": [1.5, "x", None]}], "": True},
}
"""Parameters that exercise every rule of the canonical form."""


def test_each_example_encodes_every_canonical_rule_as_the_hub_does(
    client: list[str], tmp_path: Path, vector_files: tuple[Path, Path]
) -> None:
    key, _ = vector_files
    request = {"service": "6.15.1", "device_id": "00DB1234567890AB", "params": TRICKY_PARAMS}
    path = tmp_path / "tricky.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    result = _run([*client, "--vectors", str(key), str(path)])
    loaded = json.loads(path.read_text(encoding="utf-8"))
    expected = signed_bytes(loaded["service"], loaded["device_id"], loaded["params"])
    assert bytes.fromhex(result["signed_bytes"]).hex() == expected.hex()
    assert _verifies(bytes.fromhex(result["signature"]), expected)


# ---- against a live hub ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=40, seed=5)
    return directory


@pytest.fixture(scope="module")
def hub(
    fleet_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveHub, Fleet]]:
    """A live hub on a random loopback port, stopped after the module."""
    fleet = load_fleet(fleet_dir)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path_factory.mktemp("data"),
        endpoint="tcp://127.0.0.1:0",
        pools=2,
    )
    running = LiveHub(settings, fleet).start()
    try:
        yield running, fleet
    finally:
        running.stop()


def _pending(hub: LiveHub, fleet_dir: Path, user_id: str) -> int:
    """What the hub holds for the user, as a new connection's welcome says."""
    client = HubClient(
        hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user_id)
    )
    try:
        client.connect()
        assert client.welcome is not None
        return client.welcome.pending
    finally:
        client.close()


def test_each_example_says_hello_finds_a_meter_reads_it_and_changes_its_tariff_signed(
    client: list[str], hub: tuple[LiveHub, Fleet], fleet_dir: Path
) -> None:
    running, fleet = hub
    user, meter = supplier_meter(fleet)
    keys = user_keypair(fleet_dir, user)
    party = fleet.users[user].party_id
    env = {
        "DCC_HUB_ENDPOINT": running.endpoint,
        "DCC_HUB_PUBLIC_KEY": hub_keypair(fleet_dir).public.decode("ascii"),
        "DCC_PUBLIC_KEY": keys.public.decode("ascii"),
        "DCC_SECRET_KEY": keys.secret.decode("ascii"),
        "DCC_SIGNING_KEY": str(signing_key_path(keys_dir(fleet_dir), party)),
        "DCC_ROLE": "IS",
        "DCC_MPXN": meter.mpxn,
        "DCC_TIMEOUT_S": "60",
    }
    result = _run(client, env)
    assert result["user_id"] == user
    assert result["device_id"] == meter.device_id  # found from the meter point alone
    at_site = {d.device_id for d in fleet.inventory.site_devices(meter.site_id)}
    assert set(result["site_devices"]) == at_site
    assert result["read"] == "I0"
    assert result["read_body"]  # the registers were read
    assert result["tariff"] == "I0"  # the device verified the signature and took the tariff
    assert len(set(result["acked"])) >= 3  # the three responses, and any alerts, acknowledged
    wait_until(lambda: _pending(running, fleet_dir, user) == 0, 30.0, "the hub to take the acks")


def test_each_example_reports_a_refused_request_and_exits_non_zero(
    client: list[str], hub: tuple[LiveHub, Fleet], fleet_dir: Path
) -> None:
    running, fleet = hub
    user, _ = supplier_meter(fleet)
    keys = user_keypair(fleet_dir, user)
    env = {
        "DCC_HUB_ENDPOINT": running.endpoint,
        "DCC_HUB_PUBLIC_KEY": hub_keypair(fleet_dir).public.decode("ascii"),
        "DCC_PUBLIC_KEY": keys.public.decode("ascii"),
        "DCC_SECRET_KEY": keys.secret.decode("ascii"),
        "DCC_SIGNING_KEY": str(signing_key_path(keys_dir(fleet_dir), fleet.users[user].party_id)),
        "DCC_MPXN": "1000123456788",  # well formed, but no meter point the hub knows
        "DCC_TIMEOUT_S": "60",
    }
    done = subprocess.run(
        client,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "8.2 refused E19" in done.stderr, done.stderr
