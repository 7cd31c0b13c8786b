"""What every simulated device does: admit a command, verify its signature, run it now or at
its execution time, keep event and security logs, raise alerts, hold credentials and firmware.

Decides: whether a command is for this device at all (known, in-scope service that applies to
this device type, with valid parameters, and, when critical, signed with ECDSA by a key the
device holds as a trust anchor: the supplier's or the network operator's; a missing or bad
signature is refused and raises 8F3E), whether it runs now or is held
for its future execution time (Device future-dated pattern: SCHEDULED now, alert 8F66 or 8F67
when it runs; the same command sent again is held once), whether a command is a repeat of one
it carried out whose repeat would change it again (``NOT_IDEMPOTENT``, or one that ran at its
execution time: refused), and the handlers every device type shares (identity, firmware, logs,
alert behaviour, security credentials, commissioning, HAN joins).
Must never: trust the hub (every check is repeated here), read the clock (``now`` is passed
in), draw randomness other than from the seed given at construction, or open files/sockets.

Handlers are looked up in a per-class table (``HANDLERS``: service code -> function); a
handler returns the response body, or raises ``RefusedError`` to reject the command with a reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric import ec

from hub.reference.catalogue import CATALOGUE, FutureDated
from hub.reference.roles import DeviceType
from hub.reference.service_params import validate_params
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Instant,
    Value,
)
from hub.wire.signing import public_key_from_der, signature_form_problem, verify

from .load import unit
from .logbook import RecordLog, code_number, code_text, from_ms, to_ms

Body = dict[str, Value]
"""A response body."""

MAX_LOG_ENTRIES = 20
"""Entries each device log keeps; the oldest is dropped first."""
MAX_PENDING_COMMANDS = 8
"""Future-dated commands a device holds at once."""
MAX_JOINED = 6
"""HAN devices a device may be joined to."""
REPEAT_MEMORY = 8
"""Ids of commands carried out that a device remembers, to refuse a repeat of one."""
NOT_IDEMPOTENT = frozenset({"1.5", "1.7", "2.3", "6.11"})
"""Services whose repeat would change the device again (add to the balance or the debt,
reset the block counters later, set the clock to a time gone by): a second command with the
same id is refused. (A repeated 2.2 is refused by its UTRN; the others leave the device as
the first left it.)"""

ALERTS: Mapping[str, str] = {
    "AD1": "Power outage: comms hub without power for more than 3 minutes",
    "808D": "RMS voltage above extreme over-voltage threshold",
    "8091": "RMS voltage above voltage swell threshold",
    "8095": "RMS voltage below extreme under-voltage threshold",
    "8099": "RMS voltage below voltage sag threshold",
    "8071": "GPF device log changed",
    "810D": "Combined credit below low credit threshold (prepayment mode)",
    "8119": "Emergency credit has become available (prepayment mode)",
    "8145": "Clock adjusted",
    "81A7": "Debt collection completed - time debt",
    "81A9": "Debt collection completed - payment debt",
    "81AA": "Emergency credit exhausted",
    "81AB": "Emergency credit activated",
    "81BE": "Supply disabled then locked - supply tamper state cause",
    "81BF": "Supply disabled then armed - uncontrolled gas flow rate",
    "8F01": "Active power import above load limit threshold",
    "8F0A": "Billing data log updated",
    "8F0F": "Credit below disablement threshold (prepayment mode)",
    "8F12": "CHF device log changed",
    "8F26": "Sub GHz channel changed",
    "8F2A": "Sub GHz configuration changed",
    "8F32": "Supply armed",
    "8F33": "Supply disabled then armed - load limit triggered",
    "8F34": "Supply enabled after load limit restoration period",
    "8F35": "Supply outage restored",
    "8F36": "Supply outage restored - outage >= 3 minutes",
    "8F3E": "Unauthorised communication access attempted",
    "8F3F": "Unauthorised physical access - tamper detect",
    "8F43": "Change in the executing firmware version",
    "8F47": "Credit would cause meter balance to exceed maximum meter balance threshold",
    "8F49": "Device joining succeeded",
    "8F4B": "Device unjoining succeeded",
    "8F4D": "Device's own digital signing certificate replaced",
    "8F4F": "Device's own key agreement certificate replaced",
    "8F51": "Duplicate UTRN entered",
    "8F52": "Event log cleared",
    "8F5B": "UTRN exceeds maximum credit threshold",
    "8F63": "UTRN not authentic",
    "8F64": "UTRN not for this device",
    "8F66": "Future-dated command successfully actioned",
    "8F67": "Future-dated command not successfully actioned",
    "8F69": "Device commissioned",
    "8F70": "Security credentials updated",
    "8F89": "Firmware transfer failed",
    "8F8A": "Firmware transfer succeeded",
}
"""Every alert and event code the simulated devices raise or log, with its meaning."""

SECURITY_CODES = frozenset(
    {"8F3E", "8F3F", "8F43", "8F4D", "8F4F", "8F51", "8F63", "8F64", "8F70", "8F89", "8F8A"}
)
"""Codes recorded in the security log rather than the event log."""

_NO_CODES: frozenset[str] = frozenset()
_DEFAULT_MODELS = {t: f"SIM-{t.value}" for t in DeviceType}
PublicKey = ec.EllipticCurvePublicKey
"""A party's public signing key (ECDSA P-256)."""


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The public keys a device verifies critical commands with (its trust anchor cells)."""

    supplier: PublicKey | None = None
    """The registered supplier's key (6.15.1 and 6.23 replace it)."""
    network_operator: PublicKey | None = None
    """The network operator's key (6.15.1 replaces it)."""


NO_ANCHORS = TrustAnchors()
"""A device that holds no key verifies no critical command."""


class LogKind(StrEnum):
    """A device's logs."""

    EVENT = "event"
    SECURITY = "security"


class RefusedError(Exception):
    """A handler refuses a command; the device answers REJECTED with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Ctx:
    """What a handler gets: the command, when it runs, and where its alerts go."""

    command: DeviceCommand
    """The command being executed."""
    now: Instant
    """When it executes (its execution time for a future-dated command)."""
    alerts: list[DeviceAlert] = field(default_factory=list)
    """Alerts raised while executing."""

    @property
    def params(self) -> Mapping[str, Value]:
        """The command's parameters (already validated against their schema)."""
        return self.command.params


Handler = Callable[[Any, Ctx], Body]
"""A service handler: (device, context) -> response body; raises ``RefusedError`` to reject."""


def fingerprint(data: bytes) -> str:
    """A short, stable identifier of a certificate (16 hex digits of its SHA-256)."""
    return hashlib.sha256(data).hexdigest()[:16].upper()


# -------------------------------------------------------------------- typed parameter access


def p_int(params: Mapping[str, Value], name: str, default: int | None = None) -> int:
    """An integer parameter (validated earlier), or ``default`` when absent."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RefusedError(f"parameter {name} must be an integer")
    return value


def p_float(params: Mapping[str, Value], name: str, default: float | None = None) -> float:
    """A numeric parameter as a float, or ``default`` when absent."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RefusedError(f"parameter {name} must be a number")
    return float(value)


def p_str(params: Mapping[str, Value], name: str, default: str | None = None) -> str:
    """A text parameter, or ``default`` when absent."""
    value = params.get(name, default)
    if not isinstance(value, str):
        raise RefusedError(f"parameter {name} must be a string")
    return value


def p_bool(params: Mapping[str, Value], name: str, default: bool | None = None) -> bool:
    """A boolean parameter, or ``default`` when absent."""
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise RefusedError(f"parameter {name} must be a boolean")
    return value


def p_bytes(params: Mapping[str, Value], name: str) -> bytes:
    """A bytes parameter."""
    value = params.get(name)
    if not isinstance(value, bytes):
        raise RefusedError(f"parameter {name} must be bytes")
    return value


def p_floats(params: Mapping[str, Value], name: str) -> tuple[float, ...]:
    """A list-of-numbers parameter as a tuple of floats (empty when absent)."""
    value = params.get(name, [])
    if not isinstance(value, list):
        raise RefusedError(f"parameter {name} must be a list")
    return tuple(p_float({"v": v}, "v") for v in value)


def p_strs(params: Mapping[str, Value], name: str) -> tuple[str, ...]:
    """A list-of-strings parameter as a tuple (empty when absent)."""
    value = params.get(name, [])
    if not isinstance(value, list):
        raise RefusedError(f"parameter {name} must be a list")
    return tuple(p_str({"v": v}, "v") for v in value)


def pence(millipence: int) -> float:
    """Millipence (the meters' money unit) as pence, for response bodies."""
    return round(millipence / 1000.0, 3)


# -------------------------------------------------------------------- the device


class Device:
    """A simulated smart metering device: state that commands change and reads show."""

    __slots__ = (
        "_credentials",
        "_csr",
        "_draws",
        "_joined",
        "_key",
        "_log",
        "_muted",
        "_pending",
        "_pending_image",
        "_recent",
        "_seclog",
        "commissioned",
        "device_id",
        "firmware_version",
        "manufacturer",
        "model",
        "network_key",
        "network_key_id",
        "supplier_key",
        "supplier_key_id",
    )

    DEVICE_TYPE: ClassVar[DeviceType]
    """The device type this class simulates."""
    HANDLERS: ClassVar[Mapping[str, Handler]]
    """Service code -> handler, for every service this device type answers."""

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        supplier_key_id: str,
        network_key_id: str,
        firmware_version: str = "1.0.0",
        manufacturer: str = "SimMeters",
        model: str = "",
        anchors: TrustAnchors = NO_ANCHORS,
    ) -> None:
        self.device_id = device_id
        """EUI-64, 16 upper-case hex digits."""
        self.manufacturer = manufacturer
        self.model = model or _DEFAULT_MODELS[self.DEVICE_TYPE]
        self.firmware_version = firmware_version
        """The running firmware version."""
        self.commissioned = True
        """Commissioned on its comms hub (8.1.1)."""
        self.supplier_key_id = supplier_key_id
        """The registered supplier's party id, which UTRNs are checked against (6.23 moves it)."""
        self.network_key_id = network_key_id
        """The network operator's party id."""
        self.supplier_key: PublicKey | None = anchors.supplier
        """The supplier's public key critical commands are verified with (6.23 replaces it)."""
        self.network_key: PublicKey | None = anchors.network_operator
        """The network operator's public key, which critical commands may also verify with."""
        self._key = key
        self._draws = 0
        self._pending_image: str | None = None
        self._log: RecordLog | None = None
        self._seclog: RecordLog | None = None
        self._muted: frozenset[str] = _NO_CODES
        self._pending: list[tuple[float, int, DeviceCommand]] | None = None
        self._credentials: dict[str, str] | None = None
        self._csr: frozenset[str] = _NO_CODES
        self._joined: tuple[str, ...] = ()
        self._recent: tuple[str, ...] = ()

    # ------------------------------------------------------------------ driving

    def execute(
        self, command: DeviceCommand, now: Instant, alerts: list[DeviceAlert]
    ) -> DeviceResponse:
        """Act on ``command`` at ``now``; alerts raised (also while catching up) go to ``alerts``."""
        self.advance(now, alerts)
        problem = self.admission_problem(command)
        if problem is not None:
            return self._answer(command, CommandStatus.REJECTED, reason=problem)
        service = CATALOGUE[command.service]
        if service.critical:
            problem = self._signature_problem(command)
            if problem is not None:
                self.alert(alerts, "8F3E", now, {"service": command.service, "reason": problem})
                return self._answer(command, CommandStatus.REJECTED, reason=problem)
        if command.command_id in self._recent:
            reason = f"command {command.command_id} was already carried out; a repeat is refused"
            return self._answer(command, CommandStatus.REJECTED, reason=reason)
        at = _execution_time(command)
        if at is not None and at > now:
            if service.future_dated not in (FutureDated.DEVICE, FutureDated.DSP_AND_DEVICE):
                reason = (
                    f"{command.service} cannot be future dated on the device "
                    f"(pattern {service.future_dated.value})"
                )
                return self._answer(command, CommandStatus.REJECTED, reason=reason)
            pending = self._pending or []
            if any(held == command for _, _, held in pending):  # sent again: held once
                again: Body = {"execute_at": at, "pending_commands": len(pending)}
                return self._answer(command, CommandStatus.SCHEDULED, body=again)
            if len(pending) >= MAX_PENDING_COMMANDS:
                reason = f"device already holds {MAX_PENDING_COMMANDS} future-dated commands"
                return self._answer(command, CommandStatus.REJECTED, reason=reason)
            self._draws += 1
            pending.append((at, self._draws, command))
            pending.sort(key=lambda item: (item[0], item[1]))
            self._pending = pending
            body: Body = {"execute_at": at, "pending_commands": len(pending)}
            return self._answer(command, CommandStatus.SCHEDULED, body=body)
        return self._run(command, now, alerts)

    def advance(self, now: Instant, alerts: list[DeviceAlert]) -> None:
        """Bring the device up to ``now``: run due future-dated commands at their times (each
        raises 8F66 or 8F67) and let time-driven state (consumption, credit) catch up."""
        while self._pending and self._pending[0][0] <= now:
            at, _, command = self._pending.pop(0)
            if not self._pending:
                self._pending = None
            self.catch_up(at, alerts)
            response = self._run(command, at, alerts)
            self._carried_out(command.command_id)
            data: dict[str, Value] = {"command_id": command.command_id, "service": command.service}
            if response.status is CommandStatus.SUCCESS:
                self.alert(alerts, "8F66", at, data)
            else:
                self.alert(alerts, "8F67", at, {**data, "reason": response.reason})
        self.catch_up(now, alerts)

    def catch_up(self, now: Instant, alerts: list[DeviceAlert]) -> None:
        """Let time-driven state reach ``now`` (nothing for devices without a meter)."""

    def admission_problem(self, command: DeviceCommand) -> str | None:
        """Why this device will not act on ``command`` at all, or None."""
        if command.device_id != self.device_id:
            return f"command is for device {command.device_id}, not {self.device_id}"
        service = CATALOGUE.get(command.service)
        if service is None:
            return f"unknown service {command.service!r}"
        if not service.in_scope:
            return f"{service.code} ({service.name}) is not in scope"
        if service.non_device:
            return f"{service.code} ({service.name}) is answered by the hub, not a device"
        if self.DEVICE_TYPE not in service.device_types:
            return f"{service.code} ({service.name}) does not apply to a {self.DEVICE_TYPE.value}"
        problems = validate_params(service.code, command.params)
        if problems:
            return "invalid parameters: " + "; ".join(problems)
        if command.service not in self.HANDLERS:
            return f"{service.code} is not supported by this {self.DEVICE_TYPE.value}"
        return None

    def _run(
        self, command: DeviceCommand, at: Instant, alerts: list[DeviceAlert]
    ) -> DeviceResponse:
        handler = self.HANDLERS[command.service]
        try:
            body = handler(self, Ctx(command, at, alerts))
        except RefusedError as refusal:
            return self._answer(command, CommandStatus.REJECTED, reason=refusal.reason)
        if command.service in NOT_IDEMPOTENT:
            self._carried_out(command.command_id)
        return self._answer(command, CommandStatus.SUCCESS, body=body)

    def _carried_out(self, command_id: str) -> None:
        """Remember a command carried out whose repeat must be refused (bounded)."""
        if command_id not in self._recent:
            self._recent = (*self._recent, command_id)[-REPEAT_MEMORY:]

    def _answer(
        self,
        command: DeviceCommand,
        status: CommandStatus,
        *,
        body: Body | None = None,
        reason: str = "",
    ) -> DeviceResponse:
        return DeviceResponse(
            command_id=command.command_id,
            device_id=self.device_id,
            service=command.service,
            status=status,
            body=body or {},
            reason=reason,
        )

    def _signature_problem(self, command: DeviceCommand) -> str | None:
        signature = command.signature
        if not signature:
            return f"{command.service} is critical and the command is not signed"
        problem = signature_form_problem(signature)
        if problem is not None:
            return problem
        keys = [k for k in (self.supplier_key, self.network_key) if k is not None]
        if not keys:
            return "this device holds no trust anchor to verify a signature with"
        for key in keys:
            if verify(key, signature, command.service, command.device_id, command.params):
                return None
        return "the signature does not verify with a key this device holds"

    # ------------------------------------------------------------------ logs and alerts

    def log(self, at: Instant, code: str) -> None:
        """Record ``code`` at ``at`` in the event or security log (bounded)."""
        if code in SECURITY_CODES:
            if self._seclog is None:
                self._seclog = RecordLog(2, MAX_LOG_ENTRIES)
            self._seclog.append(to_ms(at), code_number(code))
        else:
            if self._log is None:
                self._log = RecordLog(2, MAX_LOG_ENTRIES)
            self._log.append(to_ms(at), code_number(code))

    def alert(
        self,
        alerts: list[DeviceAlert],
        code: str,
        at: Instant,
        data: Mapping[str, Value] | None = None,
    ) -> None:
        """Log ``code`` and, unless its alert behaviour turns it off, send it."""
        self.log(at, code)
        if code not in self._muted:
            alerts.append(DeviceAlert(self.device_id, code, at, dict(data or {})))

    def draw(self, stream: int = 0) -> float:
        """The device's next deterministic number in [0, 1) (from its seeded key)."""
        self._draws += 1
        return unit(self._key, self._draws, stream)

    def receive_image(
        self, version: str, at: Instant, alerts: list[DeviceAlert], *, ok: bool = True
    ) -> None:
        """A firmware image arrives over the HAN (11.1 is the hub's): 8F8A, or 8F89 on failure."""
        if ok:
            self._pending_image = version
            self.alert(alerts, "8F8A", at, {"version": version})
        else:
            self.alert(alerts, "8F89", at, {"version": version})

    @property
    def pending_image(self) -> str | None:
        """The transferred firmware version waiting for activation (11.3), if any."""
        return self._pending_image

    @property
    def joined(self) -> tuple[str, ...]:
        """The HAN devices this device is joined to."""
        return self._joined

    def set_joined(self, device_ids: tuple[str, ...]) -> None:
        """Join HAN devices without commands (installation)."""
        self._joined = device_ids[:MAX_JOINED]

    def identity(self) -> Body:
        """The identity fields every device reports."""
        return {
            "device_id": self.device_id,
            "device_type": self.DEVICE_TYPE.value,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware_version": self.firmware_version,
            "commissioned": self.commissioned,
        }

    # ------------------------------------------------------------------ shared handlers

    def h_identity(self, ctx: Ctx) -> Body:
        """6.2.4 Read Device Configuration (Identity Exc MPxN)."""
        return self.identity()

    def h_alert_behaviours(self, ctx: Ctx) -> Body:
        """6.2.10 Read Device Configuration (Event and Alert Behaviours)."""
        disabled: list[Value] = [*sorted(self._muted)]
        sent: list[Value] = [code for code in ALERTS if code not in self._muted]
        return {"alerts_disabled": disabled, "alerts_sent": sent}

    def h_configure_alert(self, ctx: Ctx) -> Body:
        """6.22 Configure Alert Behaviour: send an alert, or only log it."""
        code = p_str(ctx.params, "alert_code")
        if code not in ALERTS:
            raise RefusedError(f"alert {code} is not raised by this device")
        enabled = p_bool(ctx.params, "enabled")
        muted = self._muted - {code} if enabled else self._muted | {code}
        self._muted = muted or _NO_CODES
        return {"alert_code": code, "enabled": enabled}

    def h_read_log(self, ctx: Ctx) -> Body:
        """6.13 Read Event Or Security Log."""
        kind = LogKind(p_str(ctx.params, "log"))
        entries = (self._log if kind is LogKind.EVENT else self._seclog) or ()
        rows: list[Value] = []
        for at, number in entries:
            code = code_text(number)
            rows.append({"at": from_ms(at), "code": code, "meaning": ALERTS.get(code, "")})
        return {"log": kind.value, "entries": rows}

    def h_read_firmware(self, ctx: Ctx) -> Body:
        """11.2 Read Firmware Version."""
        return {"firmware_version": self.firmware_version, "pending_image": self._pending_image}

    def h_activate_firmware(self, ctx: Ctx) -> Body:
        """11.3 Activate Firmware: run a previously transferred image."""
        version = p_str(ctx.params, "version")
        at = ctx.params.get("activate_at")
        if ctx.command.execute_at is not None and at is not None and at != ctx.command.execute_at:
            raise RefusedError("activate_at and the command's execution time disagree")
        if self._pending_image != version:
            held = self._pending_image or "none"
            raise RefusedError(f"no image of version {version} transferred (holding {held})")
        previous = self.firmware_version
        self.firmware_version = version
        self._pending_image = None
        self.log(ctx.now, "8F43")
        return {"firmware_version": version, "previous_version": previous}

    def h_commission(self, ctx: Ctx) -> Body:
        """8.1.1 Commission Device."""
        if p_str(ctx.params, "device_id") != self.device_id:
            raise RefusedError("device_id does not name the device the command is addressed to")
        self.commissioned = True
        self.log(ctx.now, "8F69")
        return {"device_id": self.device_id, "commissioned": True}

    def h_join(self, ctx: Ctx) -> Body:
        """8.7.1 / 8.7.2 Join Service: pair with another HAN device."""
        other = p_str(ctx.params, "other_device_id")
        if other == self.device_id:
            raise RefusedError("a device cannot join itself")
        if other in self._joined:
            return {"other_device_id": other, "joined": True, "already_joined": True}
        if len(self._joined) >= MAX_JOINED:
            raise RefusedError(f"already joined to {MAX_JOINED} devices")
        self._joined = (*self._joined, other)
        self.log(ctx.now, "8F49")
        return {"other_device_id": other, "joined": True, "already_joined": False}

    def h_unjoin(self, ctx: Ctx) -> Body:
        """8.8.1 / 8.8.2 Unjoin Service."""
        other = p_str(ctx.params, "other_device_id")
        was_joined = other in self._joined
        if was_joined:
            self._joined = tuple(d for d in self._joined if d != other)
            self.log(ctx.now, "8F4B")
        return {"other_device_id": other, "joined": False, "was_joined": was_joined}

    def _set_credential(self, name: str, value: str) -> None:
        credentials = dict(self._credentials or {})
        credentials[name] = value
        self._credentials = credentials

    def h_update_krp(self, ctx: Ctx) -> Body:
        """6.15.1 Update Security Credentials (KRP): replace a remote party's credential."""
        role = p_str(ctx.params, "party_role")
        key_id = p_str(ctx.params, "key_id")
        certificate = p_bytes(ctx.params, "certificate")
        fp = fingerprint(certificate)
        if role == "supplier":
            self.supplier_key = _public_key(certificate)
            self.supplier_key_id = key_id
        elif role == "network_operator":
            self.network_key = _public_key(certificate)
            self.network_key_id = key_id
        self._set_credential(role, fp)
        self.log(ctx.now, "8F70")
        return {"party_role": role, "key_id": key_id, "certificate_fingerprint": fp}

    def h_update_device_credentials(self, ctx: Ctx) -> Body:
        """6.15.2 Update Security Credentials (Device): install the certificate for a key pair
        the device generated (6.17)."""
        usage = p_str(ctx.params, "usage")
        if usage not in self._csr:
            raise RefusedError(f"no {usage} key pair is awaiting a certificate (send 6.17 first)")
        fp = fingerprint(p_bytes(ctx.params, "certificate"))
        self._csr = self._csr - {usage} or _NO_CODES
        self._set_credential(f"device:{usage}", fp)
        self.log(ctx.now, "8F4D" if usage == "digital_signing" else "8F4F")
        return {"usage": usage, "certificate_fingerprint": fp}

    def h_issue_credentials(self, ctx: Ctx) -> Body:
        """6.17 Issue Security Credentials: generate a key pair and return its signing request."""
        usage = p_str(ctx.params, "usage")
        self._draws += 1
        request = hashlib.sha256(f"{self.device_id}|{usage}|{self._key}|{self._draws}".encode())
        self._csr = self._csr | {usage}
        return {"usage": usage, "certificate_signing_request": request.digest()}

    def h_handover(self, ctx: Ctx) -> Body:
        """6.21 Request Handover Of DCC Controlled Device: a new access control broker."""
        key_id = p_str(ctx.params, "key_id")
        fp = fingerprint(p_bytes(ctx.params, "certificate"))
        self._set_credential("access_control_broker", fp)
        self.log(ctx.now, "8F70")
        return {"access_control_broker_key_id": key_id, "certificate_fingerprint": fp}

    def h_change_of_supplier(self, ctx: Ctx) -> Body:
        """6.23 Update Security Credentials (CoS): the gaining supplier's key (``certificate``,
        its DER public key) replaces the losing supplier's; critical commands signed and UTRNs
        issued by the losing supplier are refused from now."""
        certificate = p_bytes(ctx.params, "certificate")
        key = _public_key(certificate)
        previous = self.supplier_key_id
        self.supplier_key_id = p_str(ctx.params, "supplier_key_id")
        self.supplier_key = key
        fp = fingerprint(certificate)
        self._set_credential("supplier", fp)
        self.log(ctx.now, "8F70")
        return {"supplier_key_id": self.supplier_key_id, "previous_supplier_key_id": previous}

    def h_read_krp(self, ctx: Ctx) -> Body:
        """6.24.1 Retrieve Device Security Credentials (KRP)."""
        remote: Body = {
            k: v
            for k, v in sorted((self._credentials or {}).items())
            if not k.startswith("device:")
        }
        return {
            "supplier_key_id": self.supplier_key_id,
            "network_key_id": self.network_key_id,
            "replaced_credentials": remote,
        }

    def h_read_device_credentials(self, ctx: Ctx) -> Body:
        """6.24.2 Retrieve Device Security Credentials (Device)."""
        credentials = self._credentials or {}
        certificates: Body = {
            usage: credentials.get(
                f"device:{usage}", fingerprint(f"{self.device_id}|{usage}".encode())
            )
            for usage in ("digital_signing", "key_agreement")
        }
        return {"device_certificates": certificates}


DEVICE_HANDLERS: Mapping[str, Handler] = {
    "6.2.4": Device.h_identity,
    "6.2.10": Device.h_alert_behaviours,
    "6.13": Device.h_read_log,
    "6.15.1": Device.h_update_krp,
    "6.15.2": Device.h_update_device_credentials,
    "6.17": Device.h_issue_credentials,
    "6.21": Device.h_handover,
    "6.22": Device.h_configure_alert,
    "6.23": Device.h_change_of_supplier,
    "6.24.1": Device.h_read_krp,
    "6.24.2": Device.h_read_device_credentials,
    "8.1.1": Device.h_commission,
    "8.7.1": Device.h_join,
    "8.7.2": Device.h_join,
    "8.8.1": Device.h_unjoin,
    "8.8.2": Device.h_unjoin,
    "11.2": Device.h_read_firmware,
    "11.3": Device.h_activate_firmware,
}
"""Handlers every device type shares (the catalogue decides which types each applies to)."""


def _public_key(certificate: bytes) -> PublicKey:
    """The P-256 public key a credential update carries (DER SubjectPublicKeyInfo)."""
    try:
        return public_key_from_der(certificate)
    except ValueError:
        raise RefusedError(
            "certificate must be an ECDSA P-256 public key as DER SubjectPublicKeyInfo"
        ) from None


def _execution_time(command: DeviceCommand) -> Instant | None:
    if command.execute_at is not None:
        return command.execute_at
    at = command.params.get("activate_at")  # 11.3 may carry its activation time as a parameter
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at)
    return None
