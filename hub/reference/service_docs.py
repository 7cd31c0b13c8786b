"""The per-service reference (docs/services.md and ``dcc catalogue --service``), rendered from
the code's own schemas.

Decides: how each service this release executes is described to an integrator: its parameters
(from ``hub.reference.service_params``, the firmware and schedule flows), an example request
(from ``example_params``), its flags, priority class and target response time (from the
catalogue), the refusal codes it can meet (derived from the same flags the hub decides by), its
response body where the hub states it, and the UTRN format (``hub.reference.utrn``).
Must never: decide anything about a request, read a clock or touch a file; it only renders.
Run as ``python -m hub.reference.service_docs`` it writes the Markdown on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from hub.flows.firmware import FIRMWARE_SERVICES, MAX_IMAGE_BYTES
from hub.flows.inventory_changes import DEVICE_EFFECTS
from hub.flows.inventory_service import BY_METER_POINT
from hub.flows.non_device import ANSWERED
from hub.flows.schedule_spec import (
    CREATE_PARAMS,
    CREATE_SERVICE,
    DELETE_PARAMS,
    DELETE_SERVICE,
    READ_PARAMS,
    READ_SERVICE,
    RequestParam,
)
from hub.flows.services import executable
from hub.reference.catalogue import CATALOGUE, FutureDated, Service
from hub.reference.codes import ResponseCode
from hub.reference.service_params import (
    EXAMPLE_DEVICE_ID,
    EXAMPLE_KEY_ID,
    HUB_SCHEMAS,
    INVENTORY_SCHEMAS,
    Format,
    Kind,
    Param,
    example_params,
    schema_for,
)
from hub.reference.standard import Value
from hub.reference.utrn import (
    MAX_AMOUNT_PENCE,
    MAX_COUNTER,
    UTRN_LENGTH,
    make_utrn,
)
from hub.wire.limits import PROTOCOL_VERSION

FIRMWARE_PARAMS: tuple[Param, ...] = (
    Param(
        "version",
        Kind.TEXT,
        "the firmware version to install: 1-32 of 0-9 A-Z a-z . _ -",
        "2.1.0",
        min_len=1,
        max_len=32,
        fmt=Format.VERSION,
    ),
    Param(
        "image_size",
        Kind.INT,
        "size of the manufacturer's image, bytes",
        1_048_576,
        minimum=1,
        maximum=MAX_IMAGE_BYTES,
    ),
)
"""The parameters of 11.1 and 11.4, as ``hub.flows.firmware.validate_update`` checks them."""

SCHEDULE_PARAMS: dict[str, tuple[RequestParam, ...]] = {
    CREATE_SERVICE: CREATE_PARAMS,
    READ_SERVICE: READ_PARAMS,
    DELETE_SERVICE: DELETE_PARAMS,
}
"""The parameters of the DCC schedule services, from ``hub.flows.schedule_spec``."""

HUB_BODIES: dict[str, tuple[tuple[str, str], ...]] = {
    "8.2": (
        (
            "device",
            "map: the target device, or the meter at the meter point asked for (see "
            "site_devices for its fields)",
        ),
        ("site", "map: site_id, comms_hub, lead_supplier"),
        (
            "site_devices",
            "list of maps: device_id, device_type, status, manufacturer, model, firmware, "
            "head_end, mpxn (or nil), early_smart",
        ),
    ),
    "12.1": (
        ("comms_hub", "text: the comms hub serving the target"),
        ("region", "text: its WAN region"),
        ("cell", "text: its WAN cell"),
        ("covered", "bool: the site has WAN coverage"),
    ),
}
"""The response body fields of the services the hub answers from its registers
(``hub.flows.non_device``; a test compares them with the handlers' answers)."""

DEVICE_BODY = "see the device's answer (the body the device returns is passed on as it is)"


@dataclass(frozen=True, slots=True)
class ParamRow:
    """One parameter as the reference shows it."""

    name: str
    """The key in the request's ``params`` map."""
    type: str
    """The type its value must have."""
    limits: str
    """Its range, length, choices or format; empty when it has none."""
    required: str
    """``yes``, ``no`` or the condition under which it is required."""
    doc: str
    """What it means."""


def _g(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def _limits(param: Param) -> str:
    parts: list[str] = []
    if param.minimum is not None or param.maximum is not None:
        low = "" if param.minimum is None else _g(param.minimum)
        high = "" if param.maximum is None else _g(param.maximum)
        parts.append(f"{low}..{high}")
    if param.kind in (Kind.TEXT, Kind.BYTES, Kind.LIST) and (param.min_len or param.max_len):
        high = "" if param.max_len is None else str(param.max_len)
        parts.append(f"length {param.min_len}..{high}")
    if param.choices:
        parts.append("one of " + " | ".join(param.choices))
    if param.fmt is not Format.NONE:
        parts.append(f"format {param.fmt.value}")
    if param.item is not None:
        inner = _limits(param.item)
        parts.append(f"items {param.item.kind.value}" + (f" {inner}" if inner else ""))
    return "; ".join(parts)


def _param_row(param: Param) -> ParamRow:
    return ParamRow(
        param.name, param.kind.value, _limits(param), "yes" if param.required else "no", param.doc
    )


def param_rows(code: str) -> tuple[ParamRow, ...]:
    """The parameters of service ``code`` as the reference shows them (empty when it takes
    none)."""
    if code in SCHEDULE_PARAMS:
        return tuple(
            ParamRow(p.name, "see description", "", p.required, p.doc)
            for p in SCHEDULE_PARAMS[code]
        )
    if code in FIRMWARE_SERVICES:
        return tuple(_param_row(p) for p in FIRMWARE_PARAMS)
    schema = schema_for(code) or HUB_SCHEMAS.get(code) or INVENTORY_SCHEMAS.get(code)
    return () if schema is None else tuple(_param_row(p) for p in schema.params)


def example(code: str) -> dict[str, Value]:
    """A valid ``params`` map for service ``code``."""
    if code in SCHEDULE_PARAMS:
        return {p.name: p.example for p in SCHEDULE_PARAMS[code] if p.example not in (None, "")}
    if code in FIRMWARE_SERVICES:
        return {p.name: p.example for p in FIRMWARE_PARAMS}
    if code in INVENTORY_SCHEMAS:
        inventory_schema = INVENTORY_SCHEMAS[code]
        return {p.name: p.example for p in inventory_schema.params if p.required or code == "8.4"}
    known = schema_for(code) is not None or code in HUB_SCHEMAS
    return example_params(code) if known else {}


def _targets_a_device(service: Service) -> bool:
    """Whether the example request names a device: device services, the services the hub
    answers from its registers about a device (except those shown asked by meter point) and
    the inventory services on a device."""
    if service.code in BY_METER_POINT:
        return False
    return not service.non_device or service.code in ANSWERED or service.code in _TARGETED


def _target(service: Service) -> str:
    if service.code in BY_METER_POINT:
        return "a device, or a meter point (`mpxn`, with `device_id` nil); answered by the hub"
    if service.code in ANSWERED:
        return "a device; answered by the hub from its registers"
    if service.code in _TARGETED:
        return "a device; carried out by the hub on its inventory"
    return "none (answered by the hub)" if service.non_device else "a device"


def example_request(service: Service) -> dict[str, object]:
    """An example ``service_request`` body for ``service``, as JSON shows it (the signature
    of a critical command stands as a description: its bytes are in docs/protocol.md §13)."""
    return {
        "v": PROTOCOL_VERSION,
        "kind": "service_request",
        "request_id": f"example-{service.code}",
        "role": sorted(r.value for r in service.roles)[0],
        "service": service.code,
        "device_id": EXAMPLE_DEVICE_ID if _targets_a_device(service) else None,
        "params": example(service.code),
        "execute_at": None,
        "signature": "<64 bytes r||s, docs/protocol.md §13>" if service.critical else "",
    }


_TARGETED = frozenset(INVENTORY_SCHEMAS) - {"12.2"}  # inventory services on a device
INVENTORY_EFFECTS = frozenset(DEVICE_EFFECTS)
"""Device services whose success changes the inventory (``hub.flows.inventory_changes``)."""


def refusal_codes(service: Service) -> tuple[tuple[ResponseCode, str], ...]:
    """The codes a request for ``service`` can meet besides I99 / I0, each with when."""
    codes: list[tuple[ResponseCode, str]] = [
        (ResponseCode.E1, "the user is not registered or does not hold the role"),
        (ResponseCode.E2, "the role may not send it (agents: read-only services only)"),
        (
            ResponseCode.E3,
            "the user is not active (over the wire a suspended user is refused at the CURVE handshake instead, docs/protocol.md §2)",
        ),
        (ResponseCode.E12, "invalid parameters" + (" or signature" if service.critical else "")),
        (ResponseCode.H4, "the request id was used for a different request"),
        (ResponseCode.H7, "held by anomaly detection (thresholds per user and service)"),
        (ResponseCode.H8, "busy: retry after the given seconds"),
        (ResponseCode.H12, "internal error: nothing done, resubmit with the same id"),
    ]
    if service.code in BY_METER_POINT:
        codes.append(
            (
                ResponseCode.E19,
                "the target device, or any meter at the meter point, is not in the inventory",
            )
        )
    elif service.code in ANSWERED or service.code in FIRMWARE_SERVICES or not service.non_device:
        codes.append((ResponseCode.E19, "the target device is not in the inventory"))
    if service.code in ANSWERED:
        codes += [
            (ResponseCode.E4, "no relation with the device's (or the given) meter point today"),
            (ResponseCode.H6, "a non-domestic meter point not opted in"),
        ]
    if not service.non_device:
        codes += [
            (ResponseCode.E4, "no relation with the device's meter point at the execution date"),
            (ResponseCode.E5, "the device's status does not allow it"),
            (ResponseCode.E11, "the device type does not take it"),
            (ResponseCode.H6, "a non-domestic meter point not opted in"),
            (ResponseCode.E21, "no response from the device"),
            (ResponseCode.H11, "the device rejected the command (the reason says why)"),
        ]
    if service.code in INVENTORY_SCHEMAS:
        codes += [
            (ResponseCode.E4, "the sender does not supply the meter point today"),
            (ResponseCode.E5, "the status table does not allow the change (docs/protocol.md)"),
            (ResponseCode.E11, "the device or meter point does not take it"),
            (ResponseCode.H6, "a non-domestic meter point not served by the hub"),
        ]
        if service.code in _TARGETED:
            codes.append((ResponseCode.E19, "the target device is not in the inventory"))
    if service.code in INVENTORY_EFFECTS:
        codes.append(
            (ResponseCode.E5, "the device answered, but the inventory moved meanwhile (§9a)")
        )
    if service.future_dated in (FutureDated.DEVICE, FutureDated.DSP_AND_DEVICE):
        codes.append((ResponseCode.E30, "no 8F66 / 8F67 outcome after the execution time"))
    return tuple(sorted(set(codes), key=lambda c: (c[0].value[0], int(c[0].value[1:]), c[1])))


def response_body(service: Service) -> tuple[tuple[str, str], ...] | str:
    """The response body fields of ``service`` where the hub states them, else a pointer to
    the device's answer."""
    return HUB_BODIES.get(service.code, DEVICE_BODY)


def reference(service: Service) -> dict[str, object]:
    """Everything the reference says about ``service``, JSON-ready (``dcc catalogue
    --service CODE --json``)."""
    body = response_body(service)
    return {
        "code": service.code,
        "name": service.name,
        "executes": executable(service),
        "roles": sorted(r.value for r in service.roles),
        "critical": service.critical,
        "future_dated": None
        if service.future_dated is FutureDated.NONE
        else service.future_dated.value,
        "schedulable": service.schedulable,
        "non_device": service.non_device,
        "priority": service.priority.name,
        "target_response_s": service.target_response_s,
        "params": [
            {
                "name": r.name,
                "type": r.type,
                "limits": r.limits,
                "required": r.required,
                "doc": r.doc,
            }
            for r in param_rows(service.code)
        ],
        "example_request": example_request(service),
        "refusals": [{"code": c.value, "when": when} for c, when in refusal_codes(service)],
        "response_body": body
        if isinstance(body, str)
        else [{"name": n, "doc": d} for n, d in body],
    }


def services() -> tuple[Service, ...]:
    """The services the reference covers: every in-scope one this release executes."""
    return tuple(s for s in CATALOGUE.services() if executable(s))


def _json_bytes(value: object) -> str:
    """Bytes (msgpack bin on the wire) as JSON shows them in the examples."""
    if isinstance(value, bytes):
        return f"<msgpack bin, {len(value)} bytes, hex {value.hex()}>"
    raise TypeError(f"cannot show {type(value).__name__}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def service_markdown(service: Service) -> list[str]:
    """The reference section of one service, as Markdown lines."""
    fd = "no" if service.future_dated is FutureDated.NONE else service.future_dated.value
    lines = [
        f"## {service.code} {service.name}",
        "",
        f"- Roles: {' '.join(sorted(r.value for r in service.roles))}",
        f"- Critical (signed, docs/protocol.md §13): {'yes' if service.critical else 'no'}",
        f"- Future-datable: {fd}; schedulable (5.1): {'yes' if service.schedulable else 'no'}",
        f"- Target: {_target(service)}"
        + (
            f" ({' '.join(sorted(d.value for d in service.device_types))})"
            if service.device_types
            else ""
        ),
        f"- Priority class: {service.priority.name.lower()}; target response time "
        f"{service.target_response_s:g} s",
        "",
    ]
    rows = param_rows(service.code)
    if rows:
        lines += _table(
            ("Parameter", "Type", "Limits", "Required", "Meaning"),
            [(f"`{r.name}`", r.type, r.limits, r.required, r.doc) for r in rows],
        )
    else:
        lines.append("No parameters.")
    lines += ["", "Example request:", "", "```json"]
    lines += json.dumps(example_request(service), indent=2, default=_json_bytes).splitlines()
    lines += ["```", "", "Refusals and failures:", ""]
    lines += _table(("Code", "When"), [(c.value, when) for c, when in refusal_codes(service)])
    body = response_body(service)
    lines += ["", "Response body:", ""]
    if isinstance(body, str):
        lines.append(body[0].upper() + body[1:] + ".")
    else:
        lines += _table(("Field", "Meaning"), [(f"`{n}`", d) for n, d in body])
    return [*lines, ""]


def utrn_markdown() -> list[str]:
    """The UTRN format and its check digit, as Markdown lines."""
    sample = make_utrn(EXAMPLE_DEVICE_ID, 500, 1, key=EXAMPLE_KEY_ID)
    return [
        "## The UTRN (2.2 Top Up Device)",
        "",
        f"A UTRN is {UTRN_LENGTH} decimal digits, sent as a string: 19 payload digits and a "
        "Verhoeff check digit last.",
        "",
        *_table(
            ("Digits", "Field", "Meaning"),
            [
                (
                    "1-6",
                    "counter",
                    f"transaction counter, 0..{MAX_COUNTER}; a meter accepts each once (else 8F51)",
                ),
                ("7-11", "amount", f"credit in pence, 1..{MAX_AMOUNT_PENCE}"),
                (
                    "12-15",
                    "device tag",
                    "SHA-256 of `utrn-device` 0x1F device id (upper case), first 8 bytes big-endian, mod 10000 (else 8F64)",
                ),
                (
                    "16-19",
                    "authenticator",
                    "SHA-256 of `utrn-mac` 0x1F key 0x1F device id 0x1F amount 0x1F counter "
                    "(decimal, no padding), first 8 bytes big-endian, mod 10000 (else 8F63)",
                ),
                ("20", "check", "Verhoeff check digit over digits 1-19"),
            ],
        ),
        "",
        "Each field is written in decimal, zero-padded to its width. The key is the registered "
        "supplier's party id, which the meter holds for its supplier. The Verhoeff check digit "
        "uses the dihedral group D5 (multiplication table d), the position permutation "
        "p = (1 5 7 6 2 8 3 0 9 4) applied (i mod 8) times to the digit i places from the right "
        "(counting the check digit's place as 0), and the inverse table; a number passes when "
        "the running product over all 20 digits is 0.",
        "",
        f"Example: device `{EXAMPLE_DEVICE_ID}`, key `{EXAMPLE_KEY_ID}`, 500 pence, counter 1: "
        f"`{sample}`. `dcc utrn` issues codes for a meter in a fleet.",
        "",
    ]


def services_markdown() -> str:
    """docs/services.md: every service this release executes, then the UTRN format."""
    chosen = services()
    lines = [
        "# Service reference",
        "",
        "Generated from the code's schemas; do not edit. Regenerate with",
        "`.venv/bin/python -m hub.reference.service_docs > docs/services.md`",
        "(a test fails when this file and the code differ).",
        "",
        f"{len(chosen)} services this release executes. Every request is a `service_request` "
        "(docs/protocol.md); types are those of `hub.reference.service_params.Kind`, instants "
        "are seconds since the Unix epoch, UTC. Refusal codes are explained in docs/protocol.md.",
        "",
    ]
    for service in chosen:
        lines += service_markdown(service)
    lines += utrn_markdown()
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(services_markdown())
