"""The protocol's example client in Python, written from docs/protocol.md alone.

It uses pyzmq, msgpack and cryptography (``pip install pyzmq msgpack cryptography``) and
nothing from the hub's own code. In one run it:

1. connects a CURVE-encrypted DEALER socket and says ``hello`` (answered by ``welcome``);
2. finds the meter at a meter point through 8.2 Read Inventory by ``mpxn`` (device discovery);
3. reads that meter's import registers (4.1.1);
4. sends a signed critical command, 1.1.1 Update Import Tariff, its signature computed over the
   canonical bytes of docs/protocol.md section 13;
5. acknowledges every response and alert it receives (``delivery_ack``), then prints one JSON
   line summing up what happened.

Configuration, each an option or an environment variable (options win):

    --endpoint        DCC_HUB_ENDPOINT        the hub's endpoint, e.g. tcp://hub.example.net:7000
    --hub-public-key  DCC_HUB_PUBLIC_KEY      the hub's CURVE public key, 40 characters of Z85
    --public-key      DCC_PUBLIC_KEY          your CURVE public key (Z85)
    --secret-key      DCC_SECRET_KEY          your CURVE secret key (Z85)
    --signing-key     DCC_SIGNING_KEY         your party's ECDSA P-256 private key, a PEM file
    --role            DCC_ROLE                the role you act in (default IS)
    --mpxn            DCC_MPXN                the meter point whose meter to find and command
    --timeout         DCC_TIMEOUT_S           seconds to wait for each answer (default 30)

``--vectors KEY.pem REQUEST.json`` prints the bytes signed for the request (service,
device_id, params as JSON) and a signature with the key, in hex, without connecting: compare
them with docs/protocol.md's test vectors.

Exit status: 0 when every step was answered as expected, 1 otherwise (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
import zmq
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# --- section 13: what is signed --------------------------------------------------------------

SIGNING_DOMAIN = b"DCC-HUB critical command v1\x00"
MAX_SAFE_INTEGER = 2**53 - 1

TARIFF = {
    "standing_charge_pence_per_day": 53.0,
    "tou_rates_pence_per_kwh": [28.5, 14.0],
    "tou_starts": ["07:30", "00:30"],
    "block_thresholds_kwh": [150.0],
    "block_prices_pence_per_kwh": [30.0, 25.0],
}
"""The 1.1.1 parameters this client sends (those of the protocol's test vector)."""


def _length(n: int, fix_base: int | None, fix_max: int, codes: tuple[int, int, int]) -> bytes:
    """A msgpack length prefix in its shortest form: fix, 8-bit (if any), 16-bit, 32-bit."""
    if fix_base is not None and n <= fix_max:
        return bytes([fix_base | n])
    if codes[0] and n <= 0xFF:
        return bytes([codes[0], n])
    if n <= 0xFFFF:
        return bytes([codes[1]]) + struct.pack(">H", n)
    return bytes([codes[2]]) + struct.pack(">I", n)


def _integer(n: int) -> bytes:
    """A msgpack integer in its shortest form."""
    if 0 <= n <= 0x7F:
        return bytes([n])
    if -32 <= n < 0:
        return struct.pack(">b", n)
    if n >= 0:
        for code, fmt, top in ((0xCC, ">B", 0xFF), (0xCD, ">H", 0xFFFF), (0xCE, ">I", 2**32 - 1)):
            if n <= top:
                return bytes([code]) + struct.pack(fmt, n)
        return b"\xcf" + struct.pack(">Q", n)
    for code, fmt, low in ((0xD0, ">b", -(2**7)), (0xD1, ">h", -(2**15)), (0xD2, ">i", -(2**31))):
        if n >= low:
            return bytes([code]) + struct.pack(fmt, n)
    return b"\xd3" + struct.pack(">q", n)


def canonical(value: Any) -> bytes:
    """The canonical msgpack of a value (docs/protocol.md section 13, rules 1-4)."""
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
            return _integer(int(value))
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _length(len(data), 0xA0, 31, (0xD9, 0xDA, 0xDB)) + data
    if isinstance(value, bytes):
        return _length(len(value), None, 0, (0xC4, 0xC5, 0xC6)) + value
    if isinstance(value, list | tuple):
        return _length(len(value), 0x90, 15, (0, 0xDC, 0xDD)) + b"".join(map(canonical, value))
    if isinstance(value, dict):
        entries = sorted((k.encode("utf-8"), v) for k, v in value.items())
        head = _length(len(entries), 0x80, 15, (0, 0xDE, 0xDF))
        return head + b"".join(canonical(k.decode("utf-8")) + canonical(v) for k, v in entries)
    raise TypeError(f"cannot sign a {type(value).__name__}")


def signed_bytes(service: str, device_id: str, params: dict[str, Any]) -> bytes:
    """The prefix, then ``[service, device_id, params]`` in canonical msgpack."""
    return SIGNING_DOMAIN + canonical([service, device_id, params])


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA P-256 / SHA-256, as the 64 bytes r || s."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def load_key(path: str) -> ec.EllipticCurvePrivateKey:
    """A PKCS#8 PEM private key."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit(f"{path} does not hold an ECDSA private key")
    return key


# --- the client ------------------------------------------------------------------------------


class Session:
    """One connection to the hub: requests, their answers, and acknowledged deliveries."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.curve_serverkey = args.hub_public_key.encode("ascii")
        self.sock.curve_publickey = args.public_key.encode("ascii")
        self.sock.curve_secretkey = args.secret_key.encode("ascii")
        self.sock.linger = 2000  # time to send the last acknowledgements when closing
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 30_000)
        self.sock.connect(args.endpoint)
        self.timeout_ms = int(args.timeout * 1000)
        self.seen: set[int] = set()  # delivery ids handled (a real client keeps them 2 days)
        self.acked: list[int] = []
        self.alerts: list[str] = []
        self.responses: dict[str, dict[str, Any]] = {}

    def send(self, body: dict[str, Any]) -> None:
        self.sock.send(msgpack.packb({"v": 1, **body}, use_bin_type=True))

    def receive(self) -> dict[str, Any]:
        """The next message; every delivery is acknowledged (once handled) as it arrives."""
        if not self.sock.poll(self.timeout_ms):
            raise SystemExit(f"no message from the hub within {self.timeout_ms / 1000:g} s")
        msg: dict[str, Any] = msgpack.unpackb(self.sock.recv(), raw=False)
        if msg["kind"] in ("service_response", "device_alert", "hub_alert"):
            delivery_id = msg["delivery_id"]
            if delivery_id not in self.seen:
                self.seen.add(delivery_id)
                if msg["kind"] == "service_response":
                    self.responses[msg["request_id"]] = msg
                else:
                    self.alerts.append(msg["alert_code"])
            self.send({"kind": "delivery_ack", "delivery_ids": [delivery_id]})
            self.acked.append(delivery_id)
        return msg

    def hello(self) -> dict[str, Any]:
        self.send({"kind": "hello", "max_in_flight": 100})
        while True:
            msg = self.receive()
            if msg["kind"] == "welcome":
                return msg

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a service_request; return its service_response (after its acknowledgement).
        A busy refusal (H8) is retried with the same request id after its pause."""
        request = {"kind": "service_request", "request_id": f"ex-{uuid.uuid4().hex}", **body}
        self.send(request)
        rid = request["request_id"]
        while rid not in self.responses:
            msg = self.receive()
            if msg["kind"] == "refusal" and msg["request_id"] == rid:
                if msg["code"] == "H8":
                    time.sleep(msg["retry_after_s"])
                    self.send(request)
                    continue
                raise SystemExit(f"{body['service']} refused {msg['code']}: {msg['reason']}")
        return self.responses[rid]

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Hello, discovery, a read and a signed tariff change; a summary of what came back."""
    key = load_key(args.signing_key)
    session = Session(args)
    try:
        welcome = session.hello()
        found = session.request(
            {"role": args.role, "service": "8.2", "device_id": None, "params": {"mpxn": args.mpxn}}
        )
        if found["code"] != "I0":
            raise SystemExit(f"8.2 answered {found['code']}: {found['body']}")
        meter = found["body"]["device"]["device_id"]
        read = session.request({"role": args.role, "service": "4.1.1", "device_id": meter})
        signature = sign(key, signed_bytes("1.1.1", meter, TARIFF))
        tariff = session.request(
            {
                "role": args.role,
                "service": "1.1.1",
                "device_id": meter,
                "params": TARIFF,
                "signature": signature,
            }
        )
        return {
            "user_id": welcome["user_id"],
            "device_id": meter,
            "site_devices": sorted(d["device_id"] for d in found["body"]["site_devices"]),
            "read": read["code"],
            "read_body": read["body"],
            "tariff": tariff["code"],
            "acked": session.acked,
            "alerts": session.alerts,
        }
    finally:
        session.close()


def vectors(key_path: str, request_path: str) -> dict[str, str]:
    """The signed bytes and a signature for a request given as JSON (no connection)."""
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    message = signed_bytes(request["service"], request["device_id"], request["params"])
    return {"signed_bytes": message.hex(), "signature": sign(load_key(key_path), message).hex()}


def options(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--endpoint", default=env("DCC_HUB_ENDPOINT"))
    parser.add_argument("--hub-public-key", default=env("DCC_HUB_PUBLIC_KEY"))
    parser.add_argument("--public-key", default=env("DCC_PUBLIC_KEY"))
    parser.add_argument("--secret-key", default=env("DCC_SECRET_KEY"))
    parser.add_argument("--signing-key", default=env("DCC_SIGNING_KEY"))
    parser.add_argument("--role", default=env("DCC_ROLE", "IS"))
    parser.add_argument("--mpxn", default=env("DCC_MPXN"))
    parser.add_argument("--timeout", type=float, default=float(env("DCC_TIMEOUT_S", "30")))
    parser.add_argument("--vectors", nargs=2, metavar=("KEY_PEM", "REQUEST_JSON"))
    args = parser.parse_args(argv)
    if args.vectors is None:
        needed = ("endpoint", "hub_public_key", "public_key", "secret_key", "signing_key", "mpxn")
        missing = [name for name in needed if not getattr(args, name)]
        if missing:
            parser.error("missing: " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return args


def main(argv: list[str]) -> int:
    args = options(argv)
    result = vectors(*args.vectors) if args.vectors else run(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
