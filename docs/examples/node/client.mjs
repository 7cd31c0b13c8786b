// A Node.js client of the hub, written from docs/protocol.md alone.
//
// Node.js 20 or later, with the npm packages `zeromq` (v6) and `@msgpack/msgpack` (`npm ci` in
// this directory installs the versions package-lock.json pins), and node's own `crypto` for
// ECDSA P-256 / SHA-256. In one run it:
//
// 1. connects a CURVE-encrypted DEALER socket and says `hello` (answered by `welcome`);
// 2. finds the meter at a meter point through 8.2 Read Inventory by `mpxn` (device discovery);
// 3. reads that meter's import registers (4.1.1);
// 4. sends a signed critical command, 1.1.1 Update Import Tariff, its signature computed over
//    the canonical bytes of docs/protocol.md section 13 (written out below, byte by byte);
// 5. acknowledges every response and alert it receives (`delivery_ack`), then prints one JSON
//    line summing up what happened.
//
// Configuration, each an option or an environment variable (options win):
//
//   --endpoint        DCC_HUB_ENDPOINT     the hub's endpoint, e.g. tcp://hub.example.net:7000
//   --hub-public-key  DCC_HUB_PUBLIC_KEY   the hub's CURVE public key, 40 characters of Z85
//   --public-key      DCC_PUBLIC_KEY       your CURVE public key (Z85)
//   --secret-key      DCC_SECRET_KEY       your CURVE secret key (Z85)
//   --signing-key     DCC_SIGNING_KEY      your party's ECDSA P-256 private key, a PEM file
//   --role            DCC_ROLE             the role you act in (default IS)
//   --mpxn            DCC_MPXN             the meter point whose meter to find and command
//   --timeout         DCC_TIMEOUT_S        seconds to wait for each answer (default 30)
//
// `--vectors KEY.pem REQUEST.json` prints the bytes signed for the request (service,
// device_id, params as JSON) and a signature with the key, in hex, without connecting: compare
// them with docs/protocol.md's test vectors.
//
// Exit status: 0 when every step was answered as expected, 1 otherwise (the reason on stderr).

import { createPrivateKey, randomUUID, sign as ecdsaSign } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { decode, encode } from "@msgpack/msgpack";

// --- section 13: what is signed ------------------------------------------------------------

const SIGNING_DOMAIN = Buffer.from("DCC-HUB critical command v1\u0000", "latin1");

// The 1.1.1 parameters this client sends (those of the protocol's test vector). JavaScript
// has one number type, so 53.0 is 53 here; the canonical form signs both as the integer 53.
const TARIFF = {
  standing_charge_pence_per_day: 53.0,
  tou_rates_pence_per_kwh: [28.5, 14.0],
  tou_starts: ["07:30", "00:30"],
  block_thresholds_kwh: [150.0],
  block_prices_pence_per_kwh: [30.0, 25.0],
};

function byte(...values) {
  return Buffer.from(values);
}

function uint(bytes, n) {
  const b = Buffer.alloc(bytes);
  if (bytes === 8) b.writeBigUInt64BE(BigInt(n));
  else b.writeUIntBE(n, 0, bytes);
  return b;
}

function int(bytes, n) {
  const b = Buffer.alloc(bytes);
  if (bytes === 8) b.writeBigInt64BE(BigInt(n));
  else b.writeIntBE(n, 0, bytes);
  return b;
}

// A msgpack length prefix in its shortest form: fix (if any), 8-bit (if any), 16, 32 bits.
function length(n, fixBase, fixMax, code8, code16, code32) {
  if (fixBase !== null && n <= fixMax) return byte(fixBase | n);
  if (code8 !== null && n <= 0xff) return Buffer.concat([byte(code8), uint(1, n)]);
  if (n <= 0xffff) return Buffer.concat([byte(code16), uint(2, n)]);
  return Buffer.concat([byte(code32), uint(4, n)]);
}

// A msgpack integer in its shortest form (rule 3).
function integer(n) {
  if (n >= 0 && n <= 0x7f) return byte(n);
  if (n < 0 && n >= -32) return int(1, n);
  if (n >= 0) {
    if (n <= 0xff) return Buffer.concat([byte(0xcc), uint(1, n)]);
    if (n <= 0xffff) return Buffer.concat([byte(0xcd), uint(2, n)]);
    if (n <= 0xffffffff) return Buffer.concat([byte(0xce), uint(4, n)]);
    return Buffer.concat([byte(0xcf), uint(8, n)]);
  }
  if (n >= -0x80) return Buffer.concat([byte(0xd0), int(1, n)]);
  if (n >= -0x8000) return Buffer.concat([byte(0xd1), int(2, n)]);
  if (n >= -0x80000000) return Buffer.concat([byte(0xd2), int(4, n)]);
  return Buffer.concat([byte(0xd3), int(8, n)]);
}

// Byte order of UTF-8 encodings (rule 2): not JavaScript's UTF-16 string order.
function compareUtf8(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

// The canonical msgpack of a value (docs/protocol.md section 13, rules 1-4).
export function canonical(value) {
  if (value === null || value === undefined) return byte(0xc0);
  if (value === true) return byte(0xc3);
  if (value === false) return byte(0xc2);
  if (typeof value === "number") {
    if (Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER) {
      return integer(value);
    }
    const b = Buffer.alloc(9);
    b[0] = 0xcb;
    b.writeDoubleBE(value, 1);
    return b;
  }
  if (typeof value === "string") {
    const data = Buffer.from(value, "utf8");
    return Buffer.concat([length(data.length, 0xa0, 31, 0xd9, 0xda, 0xdb), data]);
  }
  if (value instanceof Uint8Array) {
    return Buffer.concat([length(value.length, null, 0, 0xc4, 0xc5, 0xc6), Buffer.from(value)]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([length(value.length, 0x90, 15, null, 0xdc, 0xdd), ...value.map(canonical)]);
  }
  if (typeof value === "object") {
    const keys = Object.keys(value).sort(compareUtf8);
    const parts = [length(keys.length, 0x80, 15, null, 0xde, 0xdf)];
    for (const key of keys) parts.push(canonical(key), canonical(value[key]));
    return Buffer.concat(parts);
  }
  throw new TypeError(`cannot sign a ${typeof value}`);
}

// The prefix, then [service, device_id, params] in canonical msgpack.
export function signedBytes(service, deviceId, params) {
  return Buffer.concat([SIGNING_DOMAIN, canonical([service, deviceId, params])]);
}

// ECDSA P-256 / SHA-256 as the 64 bytes r || s (IEEE P1363, node's "ieee-p1363" encoding).
export function signMessage(pem, message) {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails.namedCurve !== "prime256v1") {
    throw new Error("the signing key must be an ECDSA P-256 private key");
  }
  return ecdsaSign("sha256", message, { key, dsaEncoding: "ieee-p1363" });
}

// --- the client ----------------------------------------------------------------------------

class Session {
  constructor(zmq, options) {
    this.socket = new zmq.Dealer({
      curveServerKey: options.hubPublicKey,
      curvePublicKey: options.publicKey,
      curveSecretKey: options.secretKey,
      linger: 2000, // time to send the last acknowledgements when closing
      reconnectMaxInterval: 30000,
      receiveTimeout: options.timeoutMs,
      sendTimeout: options.timeoutMs,
    });
    this.socket.connect(options.endpoint);
    this.timeoutMs = options.timeoutMs;
    this.seen = new Set(); // delivery ids handled (a real client keeps them 2 days)
    this.acked = [];
    this.alerts = [];
    this.responses = new Map();
  }

  async send(body) {
    await this.socket.send(encode({ v: 1, ...body }));
  }

  // The next message; every delivery is acknowledged (once handled) as it arrives.
  async receive() {
    let frames;
    try {
      frames = await this.socket.receive();
    } catch (error) {
      if (error.code === "EAGAIN") {
        throw new Error(`no message from the hub within ${this.timeoutMs / 1000} s`);
      }
      throw error;
    }
    const msg = decode(frames[0]);
    if (["service_response", "device_alert", "hub_alert"].includes(msg.kind)) {
      const id = msg.delivery_id;
      if (!this.seen.has(id)) {
        this.seen.add(id);
        if (msg.kind === "service_response") this.responses.set(msg.request_id, msg);
        else this.alerts.push(msg.alert_code);
      }
      await this.send({ kind: "delivery_ack", delivery_ids: [id] });
      this.acked.push(id);
    }
    return msg;
  }

  async hello() {
    await this.send({ kind: "hello", max_in_flight: 100 });
    for (;;) {
      const msg = await this.receive();
      if (msg.kind === "welcome") return msg;
    }
  }

  // Send a service_request; return its service_response (after its acknowledgement). A busy
  // refusal (H8) is retried with the same request id (and the same bytes) after its pause.
  async request(body) {
    const request = {
      kind: "service_request",
      request_id: `ex-${randomUUID().replaceAll("-", "")}`,
      ...body,
    };
    const frame = encode({ v: 1, ...request });
    await this.socket.send(frame);
    while (!this.responses.has(request.request_id)) {
      const msg = await this.receive();
      if (msg.kind === "refusal" && msg.request_id === request.request_id) {
        if (msg.code === "H8") {
          await new Promise((done) => setTimeout(done, msg.retry_after_s * 1000));
          await this.socket.send(frame);
          continue;
        }
        throw new Error(`${body.service} refused ${msg.code}: ${msg.reason}`);
      }
    }
    return this.responses.get(request.request_id);
  }

  close() {
    this.socket.close();
  }
}

async function run(options) {
  const zmq = await import("zeromq");
  const pem = readFileSync(options.signingKey);
  const session = new Session(zmq, options);
  try {
    const welcome = await session.hello();
    const found = await session.request({
      role: options.role,
      service: "8.2",
      device_id: null,
      params: { mpxn: options.mpxn },
    });
    if (found.code !== "I0") throw new Error(`8.2 answered ${found.code}: ${JSON.stringify(found.body)}`);
    const meter = found.body.device.device_id;
    const read = await session.request({ role: options.role, service: "4.1.1", device_id: meter });
    const signature = signMessage(pem, signedBytes("1.1.1", meter, TARIFF));
    const tariff = await session.request({
      role: options.role,
      service: "1.1.1",
      device_id: meter,
      params: TARIFF,
      signature: new Uint8Array(signature),
    });
    return {
      user_id: welcome.user_id,
      device_id: meter,
      site_devices: found.body.site_devices.map((d) => d.device_id).sort(),
      read: read.code,
      read_body: read.body,
      tariff: tariff.code,
      acked: session.acked,
      alerts: session.alerts,
    };
  } finally {
    session.close();
  }
}

function vectors(keyPath, requestPath) {
  const request = JSON.parse(readFileSync(requestPath, "utf8"));
  const message = signedBytes(request.service, request.device_id, request.params);
  return {
    signed_bytes: message.toString("hex"),
    signature: signMessage(readFileSync(keyPath), message).toString("hex"),
  };
}

function options(argv) {
  const env = process.env;
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoint: { type: "string", default: env.DCC_HUB_ENDPOINT },
      "hub-public-key": { type: "string", default: env.DCC_HUB_PUBLIC_KEY },
      "public-key": { type: "string", default: env.DCC_PUBLIC_KEY },
      "secret-key": { type: "string", default: env.DCC_SECRET_KEY },
      "signing-key": { type: "string", default: env.DCC_SIGNING_KEY },
      role: { type: "string", default: env.DCC_ROLE ?? "IS" },
      mpxn: { type: "string", default: env.DCC_MPXN },
      timeout: { type: "string", default: env.DCC_TIMEOUT_S ?? "30" },
      vectors: { type: "boolean", default: false },
    },
  });
  if (values.vectors) {
    if (positionals.length !== 2) throw new Error("--vectors takes KEY.pem REQUEST.json");
    return { vectors: positionals };
  }
  const needed = ["endpoint", "hub-public-key", "public-key", "secret-key", "signing-key", "mpxn"];
  const missing = needed.filter((name) => !values[name]);
  if (missing.length) throw new Error(`missing: ${missing.map((m) => `--${m}`).join(", ")}`);
  return {
    endpoint: values.endpoint,
    hubPublicKey: values["hub-public-key"],
    publicKey: values["public-key"],
    secretKey: values["secret-key"],
    signingKey: values["signing-key"],
    role: values.role,
    mpxn: values.mpxn,
    timeoutMs: Math.round(Number(values.timeout) * 1000),
  };
}

async function main() {
  const opts = options(process.argv.slice(2));
  const result = opts.vectors ? vectors(...opts.vectors) : await run(opts);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
