"""Event-mode load: a scenario's service users and field events, scheduled on a ``Simulation``.

Decides: which requests the simulated service users send and when (on-demand reads by hour of
day, prepayment top-ups with valid UTRNs, daily scheduled and settlement reads created as 5.1
schedules whose nominal times are spread evenly over their window, diarised tariff changes,
firmware rollouts, and the network operators' own power-quality reads), which users connect
(every supplier and network operator with meters in the fleet says Hello at the start) and how
each takes its deliveries (``[[recipients]]``: offline windows, reconnection, acknowledgement
delay, push rate, in-flight window), and which field events happen (the steady background
alerts of ``[load.alerts]``, outage storms with the comms hub's AD1 last gasp and the
restorations, WAN coverage and cell outages), each part drawn from its own named random stream
of the scenario's seed (``stream``); the request class a response is judged by
(``request_class``); and the flow class each request belongs to (``flow_of``), so both models
report the same flows.
Must never: decide anything the hub decides; it only plays the users and the field.
Register churn reaches the hub as the live change feed does (``Simulation.register_changes``,
the engine's ``on_register_changes``): changes of supplier (effective the next UK day,
followed by the gaining supplier's first requests) and of tenancy; installations are new
connections whose MPAN enters the register through the feed and whose devices the supplier
pre-notifies, installs, commissions and reads through the DUIS services; early-smart meters'
first calls are the adoption commands the live field gives (``Simulation.operator_command``).
Settlement reads only on meter points the register settles half-hourly; sites outside WAN
coverage are taken off the WAN for the whole run, and the comms hubs of a failed cell for the
outage (their requests get E20). Hub alerts (``hub_per_meter_per_day``) are the hub's own
decisions (anomaly notices, stopped schedules): the event model gets them only when the hub
makes them.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from hub import wire
from hub.flows.inventory_operator import OperatorAction, OperatorCommand
from hub.reference.catalogue import CATALOGUE
from hub.reference.mpxn import make_mpan
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.service_params import example_params, schema_for
from hub.reference.standard import DeviceAlert, Value
from hub.reference.uktime import from_uk_local, to_uk_local, uk_date
from hub.reference.utrn import make_utrn
from hub.registers.changes import (
    ChangeBatch,
    ChangeId,
    ElectricitySupplierChange,
    NewMeterPoint,
    Register,
    RegisterChange,
    TenancyChange,
)
from hub.registers.inventory import Device, DeviceStatus, Inventory, Product, Site
from hub.registers.records import PaymentMode
from hub.registers.registration import (
    MeterPoint,
    RegistrationData,
    Settlement,
    SupplierRegistration,
)
from meters_sim.flows import recipient_label
from meters_sim.scenario import FLAT, HourProfile, RequestClass, Scenario, ScheduledReads
from meters_sim.simulator import RecipientProfile, Simulation
from meters_sim.streams import Streams
from sdk.signing import SigningKey
from simfield.devices.chf import OUTAGE_ALERT_AFTER_S
from simfield.devices.esme import DEFAULT_VOLTAGE
from simfield.early_smart import METERS as EARLY_SMART_METERS
from simfield.early_smart import contacts as early_smart_contacts
from simfield.site import SiteHost

SETUP_PREFIX = "sc"
"""Request ids of the 5.1 schedule creations the workload sends at the start: the run's set-up
(``Simulation.setup_requests``), not its traffic."""

NETWORK_SHARE = 0.05
"""Share of the on-demand requests (``[load.on_demand] per_meter_per_day``) that the meter
point's network operator sends instead of its supplier (assumed: network operators read power
quality on a small share of meters; the total on-demand rate is unchanged)."""
NETWORK_SERVICES: Mapping[Role, Mapping[str, float]] = {
    Role.ED: {"4.10": 0.3, "4.16": 0.2, "4.8.2": 0.15, "4.12.1": 0.1, "6.2.1": 0.1, "4.17": 0.15},
    Role.GT: {"4.10": 0.5, "4.1.1": 0.25, "4.17": 0.25},
}
"""What a network operator reads, by its role (assumed weights; only services the catalogue
lets the role send to the meter's device type are used): network data, active power, reactive
profile, maximum demand, voltage configuration and consumption for electricity distributors;
network data, registers and consumption for gas transporters."""
STEADY_ALERTS: tuple[tuple[str, float], ...] = (
    ("8099", 0.15),
    ("8091", 0.05),
    ("8F0A", 0.5),
    ("8145", 0.3),
)
"""The background alerts of normal running and their shares (assumed): voltage sags (8099) and
swells (8091), raised by an electricity meter measuring the excursion and sent to the network
operator; billing data log updates (8F0A) and clock adjustments (8145), sent to the supplier.
A gas meter draws among the supplier alerts only."""
VOLTAGE_EXCURSION_S = 60.0
"""How long a steady-state voltage excursion lasts before the voltage is nominal again."""
NOMINAL_VOLTAGE_V = 230.0
"""The RMS voltage a meter measures when nothing is wrong."""

FLOW_PREFIXES: Mapping[str, str] = {
    "od": "on demand",
    "no": "network operator",
    "tu": "top-ups 2.2",
    "sc": "schedule creation",
    "cos": "change of supplier",
    "in": "installations",
}
"""Flow class of a request by the prefix of the request ids the workload gives it."""


@dataclass(frozen=True, slots=True)
class _Meter:
    device: Device
    user: User
    role: Role


def _meters(
    users: dict[str, User], registration: RegistrationData, inventory: Inventory, day: object
) -> list[_Meter]:
    """Commissioned meters served by the hub, each with its registered supplier's user."""

    assert isinstance(day, date)
    by_party: dict[tuple[str, Role], User] = {}
    for u in users.values():
        if u.status is UserStatus.ACTIVE:
            for role in u.roles & {Role.IS, Role.GS}:
                by_party.setdefault((u.party_id, role), u)
    out = []
    for d in inventory.devices.values():
        if (
            d.device_type not in (DeviceType.ESME, DeviceType.GSME)
            or d.status is not DeviceStatus.COMMISSIONED
        ):
            continue
        mp = registration.meter_point(d.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        role = Role.IS if mp.fuel is Fuel.ELECTRICITY else Role.GS
        supplier = mp.supplier_on(day)
        user = by_party.get((supplier or "", role))
        if user is not None:
            out.append(_Meter(d, user, role))
    return out


def _arrivals(
    rng: random.Random, rate_per_day: float, profile: HourProfile, start: float, end: float
) -> list[float]:
    """Poisson arrivals between start and end, shaped by UK hour of day."""
    times = []
    hour0 = int(start // 3600)
    for h in range(hour0, int(end // 3600) + 1):
        local_hour = to_uk_local(datetime.fromtimestamp(h * 3600, UTC)).hour
        lam = rate_per_day * profile.share(local_hour)
        t = float(h * 3600)
        while lam > 0:
            t += rng.expovariate(lam / 3600.0)
            if t >= (h + 1) * 3600:
                break
            if start <= t < end:
                times.append(t)
    return times


def flow_of(request_id: str | None, service: str, scenario: Scenario) -> str:
    """The flow class (as the bulk model names them) of a request the workload sent, or of a
    schedule's firing (request id ``S<n>:<index>``)."""
    rid = request_id or ""
    prefix = rid.split("-", 1)[0]
    if prefix in FLOW_PREFIXES:
        return FLOW_PREFIXES[prefix]
    if prefix == "tc":
        return f"tariff change {service}"
    if prefix == "fw":
        return f"firmware {service}"
    if rid.startswith("S") and ":" in rid:
        load = scenario.load
        if load.daily_reads.share > 0 and service == load.daily_reads.service:
            return f"daily reads {service}"
        if load.settlement.share > 0 and service == load.settlement.service:
            return f"settlement reads {service}"
        return "schedules"
    return "other"


FIRMWARE_SERVICES = frozenset({"11.1", "11.4"})
"""Image transfers: the firmware request class (``[sla.targets] firmware``)."""


def request_class(request_id: str | None, service: str) -> RequestClass:
    """The request class whose ``[sla.targets]`` target a response is judged against, as the
    bulk model's flows have it: firmware images; future-dated work (``tc-``, its clock from
    the execution time); a schedule's firing (``S<n>:<index>``, from the firing); the rest
    on demand (from receipt)."""
    rid = request_id or ""
    if service in FIRMWARE_SERVICES:
        return RequestClass.FIRMWARE
    if rid.startswith("tc-"):
        return RequestClass.FUTURE_DATED
    if rid.startswith("S") and ":" in rid:
        return RequestClass.SCHEDULED
    return RequestClass.ON_DEMAND


def _slots(reads: ScheduledReads, count: int) -> list[str]:
    """``count`` nominal times of day (UK local ``HH:MM``) spread evenly over the window."""
    first = reads.window_start.hour * 60 + reads.window_start.minute
    span = reads.window_s / 60.0
    out = []
    for k in range(count):
        minute = int(first + (k + 0.5) * span / count) % (24 * 60)
        out.append(f"{minute // 60:02d}:{minute % 60:02d}")
    return out


def schedule_load(
    sim: Simulation,
    scenario: Scenario,
    users: dict[str, User],
    registration: RegistrationData,
    inventory: Inventory,
    payment_modes: dict[str, PaymentMode],
    *,
    signing_keys: Mapping[str, SigningKey],
    early_smart: Sequence[Device] = (),
    early_smart_sites: Mapping[str, Site] | None = None,
) -> dict[str, int]:
    """Put the scenario's users and events on the simulation; returns what was planned.
    ``signing_keys`` are the parties' private keys (``sdk.keys.signing_keys``): the simulated
    suppliers sign their critical commands with them. ``early_smart`` are the fleet's
    early-smart meters that may start communicating via the hub (``[load.early_smart]``),
    with their premises by site id."""
    streams = Streams(scenario.run.seed)
    start = scenario.run.start.timestamp()
    end = start + scenario.run.duration_s
    meters = _meters(users, registration, inventory, uk_date(scenario.run.start))
    planned = {
        "on_demand": 0,
        "top_ups": 0,
        "schedules": 0,
        "tariff_changes": 0,
        "firmware": 0,
        "outages": 0,
    }
    counter = [0]

    def rid(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}-{counter[0]}"

    # WAN coverage: the share of each region's comms hubs the WAN does not reach answers E20
    uncovered: set[str] = set()
    for region, wan in scenario.wan.items():
        rng = stream(streams, "coverage", region.value)
        for site in sorted(inventory.sites.values(), key=lambda x: x.site_id):
            if site.region == region.value.capitalize() and rng.random() >= wan.coverage:
                sim.set_online(site.comms_hub, False)
                uncovered.add(site.comms_hub)
                sim.uncovered.add(site.comms_hub)
    planned["uncovered_sites"] = len(uncovered)
    # WAN cell outages: every comms hub of a failed cell is unreachable meanwhile
    planned["cells_down"] = 0
    for cell_outage in scenario.load.cell_outages:
        name = cell_outage.region.value.capitalize()
        rng = stream(streams, "cell outage", cell_outage.start.isoformat(), name)
        cells = sorted({s.cell for s in inventory.sites.values() if s.region == name})
        down = {c for c in cells if rng.random() < cell_outage.share}
        planned["cells_down"] += len(down)
        hubs = [
            s.comms_hub
            for s in inventory.sites.values()
            if s.cell in down and s.comms_hub not in uncovered
        ]
        t0 = cell_outage.start.timestamp()
        for hub in hubs:
            sim.at(t0, partial(sim.set_online, hub, False))
            sim.at(t0 + cell_outage.duration_s, partial(sim.set_online, hub, True))
    networks = _network_users(users, registration, meters)
    connected = {m.user.user_id for m in meters} | {
        u.user_id for pair in networks.values() for u, _ in pair
    }
    planned["connected_users"] = len(connected)
    planned["offline_users"] = _recipients(sim, scenario, users, connected)
    load = scenario.load
    # on-demand reads: most from the supplier, a share from the network operator
    services = [(code, w) for code, w in load.on_demand.services.items() if code in CATALOGUE]
    planned["network_operator"] = 0
    rng = stream(streams, "arrivals", "on demand")
    for t in _arrivals(
        rng, load.on_demand.per_meter_per_day * len(meters), load.on_demand.hour_profile, start, end
    ):
        m = rng.choice(meters)
        planned["on_demand"] += 1
        if rng.random() < NETWORK_SHARE and _network_request(
            sim, rng, m, networks.get(m.device.device_id, ()), t, rid("no")
        ):
            planned["network_operator"] += 1
            continue
        code = rng.choices([c for c, _ in services], [w for _, w in services])[0]
        service = CATALOGUE[code]
        if m.device.device_type not in service.device_types or m.role not in service.roles:
            code = "4.1.1"
        req = wire.ServiceRequest(
            request_id=rid("od"),
            role=m.role,
            service=code,
            device_id=m.device.device_id,
            params=example_params(code, t),
        )
        sim.at(t, partial(sim.request, m.user.user_id, req))
    # prepayment top-ups
    prepay = [m for m in meters if payment_modes.get(m.device.device_id) is PaymentMode.PREPAYMENT]
    if prepay:
        rng = stream(streams, "arrivals", "top-ups 2.2")
        for t in _arrivals(
            rng,
            load.top_ups.per_prepayment_meter_per_day * len(prepay),
            load.top_ups.hour_profile,
            start,
            end,
        ):
            m = rng.choice(prepay)
            counter[0] += 1
            utrn = make_utrn(m.device.device_id, 1000, counter[0] % 999_999, key=m.user.party_id)
            req = wire.ServiceRequest(
                request_id=rid("tu"),
                role=m.role,
                service="2.2",
                device_id=m.device.device_id,
                params={"utrn": utrn},
            )
            sim.at(t, partial(sim.request, m.user.user_id, req))
            planned["top_ups"] += 1
    # daily scheduled reads and settlement profile reads, created at the start as 5.1 schedules
    # (nominal times spread evenly over the window; a nominal time at or before the start
    # fires from the next day, as for any schedule created then)
    day = uk_date(scenario.run.start).isoformat()
    sim.setup_requests(f"{SETUP_PREFIX}-")
    for reads, settlement in ((load.daily_reads, False), (load.settlement, True)):
        if reads.share <= 0 or reads.service not in CATALOGUE:
            continue
        service = CATALOGUE[reads.service]
        rng = stream(streams, "scheduled reads", settlement, reads.service)
        chosen = [
            m
            for m in meters
            if rng.random() < reads.share
            and m.device.device_type in service.device_types
            and m.role in service.roles
            and (not settlement or m.role is Role.IS)  # settlement: electricity import meters
            # settlement reads only where the register says half-hourly
            and (not settlement or _half_hourly(registration, m.device.mpxn, day))
        ]
        for m, slot in zip(chosen, _slots(reads, len(chosen)), strict=True):
            params: dict[str, Value] = {
                "service": reads.service,
                "device_id": m.device.device_id,
                "recurrence": "daily",
                "start_date": day,
                "time_of_day": slot,
                "params": {"window_s": 86400},
            }
            req = wire.ServiceRequest(
                request_id=rid(SETUP_PREFIX), role=m.role, service="5.1", params=params
            )
            sim.at(start, partial(sim.request, m.user.user_id, req))
            planned["schedules"] += 1
    # diarised tariff changes: sent ahead over their notice, the device acts at the date
    for change in load.tariff_changes:
        at = change.at.timestamp()
        rng = stream(streams, "tariff change", change.at.isoformat(), change.service)
        tariff_service = CATALOGUE.get(change.service)
        for m in meters:
            if (
                rng.random() >= change.share
                or tariff_service is None
                or m.device.device_type not in tariff_service.device_types
                or m.role not in tariff_service.roles
            ):
                continue
            dev = m.device.device_id
            tariff = example_params(change.service, at)
            key = signing_keys.get(m.user.party_id)
            req = wire.ServiceRequest(
                request_id=rid("tc"),
                role=m.role,
                service=change.service,
                device_id=dev,
                params=tariff,
                execute_at=at,
                signature=key.sign(change.service, dev, tariff) if key else b"",
            )
            # sent evenly over the notice before `at`; what falls before the run was sent
            # already (it still reaches the hub, at the start)
            send = at - change.notice_s * (1.0 - rng.random())
            sim.at(max(start, send), partial(sim.request, m.user.user_id, req))
            planned["tariff_changes"] += 1
    # firmware rollouts
    for rollout in load.firmware_rollouts:
        at = rollout.at.timestamp()
        rng = stream(
            streams, "firmware", rollout.at.isoformat(), rollout.device_type.value, rollout.service
        )
        for m in meters:
            if m.device.device_type is not rollout.device_type or rng.random() >= rollout.share:
                continue
            req = wire.ServiceRequest(
                request_id=rid("fw"),
                role=m.role,
                service=rollout.service,
                device_id=m.device.device_id,
                params={"version": "9.0.0", "image_size": rollout.image_bytes},
            )
            sim.at(
                at + rng.random() * rollout.over_s,
                partial(sim.request, m.user.user_id, req),
            )
            planned["firmware"] += 1
    # change-of-supplier churn: the register reports a meter point moving to another supplier
    # from the next UK day, through the engine's change feed (as a live change file would);
    # on that day the engine stops the loser's schedules and tells it, and the gaining
    # supplier sends its first requests
    registers = _RegisterIds()
    planned["changes_of_supplier"] = 0
    suppliers = sorted(
        {u.party_id for u in users.values() if Role.IS in u.roles and u.status is UserStatus.ACTIVE}
    )
    gaining_users = {
        u.party_id: u
        for u in users.values()
        if Role.IS in u.roles and u.status is UserStatus.ACTIVE
    }
    electric = [m for m in meters if m.role is Role.IS]
    churn = load.change_of_supplier
    if electric and len(suppliers) > 1 and churn.churn_per_day > 0:
        rng = stream(streams, "arrivals", "change of supplier")
        for t in _arrivals(rng, churn.churn_per_day * len(electric), FLAT, start, end):
            m = rng.choice(electric)
            gaining = rng.choice([p for p in suppliers if p != m.user.party_id])
            sim.at(
                t,
                partial(
                    _change_supplier,
                    sim,
                    registers,
                    registration,
                    m.device.mpxn,
                    gaining,
                    gaining_users[gaining],
                    m.device.device_id,
                    churn.messages_per_change,
                ),
            )
            planned["changes_of_supplier"] += 1
    planned["changes_of_tenancy"] = _tenancy(
        sim, stream(streams, "arrivals", "tenancy"), scenario, registers, meters, start, end
    )
    planned.update(
        _installations(
            sim,
            stream(streams, "arrivals", "installations"),
            scenario,
            registers,
            users,
            inventory,
            signing_keys,
            start,
            end,
        )
    )
    planned["early_smart_contacts"] = _early_smart(
        sim, scenario, early_smart, early_smart_sites, start, end
    )
    # outage storms
    for storm in load.outages:
        region_name = storm.region.value.capitalize()
        sites = [s for s in inventory.sites.values() if s.region == region_name]
        rng = stream(streams, "outage", storm.start.isoformat(), region_name)
        hit = [s for s in sites if rng.random() < storm.share]
        t0 = storm.start.timestamp()
        for site in hit:
            back = t0 + storm.duration_s + rng.random() * storm.restore_over_s
            sim.at(t0, partial(sim.inject, site.comms_hub, _power_off))
            gasp = t0 + OUTAGE_ALERT_AFTER_S + LAST_GASP_MARGIN_S
            if gasp < back:  # the comms hub's AD1, as soon as its own rule raises it
                sim.at(gasp, partial(sim.inject, site.comms_hub, _last_gasp))
            sim.at(back, partial(sim.inject, site.comms_hub, _power_on))
            planned["outages"] += 1
    rng = stream(streams, "arrivals", "device alerts")
    planned["steady_alerts"] = _steady_alerts(
        sim, rng, scenario, meters, inventory, uncovered, start, end
    )
    return planned


def stream(streams: Streams, *name: str | bool) -> random.Random:
    """The random stream of one named part of the workload (a flow class, an event, the
    sites of a region), from ``meters_sim.streams``: adding or changing one part of a
    scenario leaves every other part's draws unchanged."""
    return random.Random(int(streams.generator("event", *name).integers(2**63)))


def _recipients(
    sim: Simulation, scenario: Scenario, users: dict[str, User], connected: set[str]
) -> int:
    """Each connected user as its ``[[recipients]]`` entry says: acknowledgement delay, push
    rate and in-flight window; it says Hello at the start unless it is offline then, goes
    away at the start of each offline interval and says Hello again at its end (offline
    intervals include ``reconnect_after``). Returns how many users are ever offline."""
    start = scenario.run.start.timestamp()
    offline_users = 0
    members: dict[int, list[str]] = {}  # entry (its index) -> its connected users
    for u in sorted(connected):
        user = users.get(u)
        roles = {r.value for r in user.roles} if user is not None else set()
        entry = scenario.recipient(u, roles)
        intervals = entry.offline_intervals(scenario.run) if entry is not None else []
        if entry is not None:
            members.setdefault(scenario.recipients.index(entry), []).append(u)
            sim.set_recipient(
                u,
                RecipientProfile(entry.ack_delay_s, entry.push_rate_per_s, entry.max_in_flight),
            )
        if not intervals or intervals[0][0] > 0:
            sim.at(start, partial(sim.hello, u))
        offline_users += bool(intervals)
        for a, b in intervals:
            if a > 0:
                sim.at(start + a, partial(sim.go_offline, u))
            if b < scenario.run.duration_s:
                sim.at(start + b, partial(sim.hello, u))
    # how long each entry's backlog takes to drain after each return (its users together)
    for index, mine in sorted(members.items()):
        entry = scenario.recipients[index]
        intervals = entry.offline_intervals(scenario.run)
        if not intervals:
            continue
        label = recipient_label(entry)
        sim.drains[label] = [None] * len(intervals)  # None: not drained within the run
        for i, (a, b) in enumerate(intervals):
            if b < scenario.run.duration_s:
                away = start + a if a > 0 else None
                sim.watch_drain(label, i, tuple(mine), away, start + b, scenario.run.step_s)
    return offline_users


LAST_GASP_MARGIN_S = 0.001
"""How long after the comms hub's outage rule is met (``OUTAGE_ALERT_AFTER_S`` into an outage)
its devices are woken, so that the AD1 reaches the hub then and not when the site is next
touched."""


def _network_users(
    users: dict[str, User], registration: RegistrationData, meters: list[_Meter]
) -> dict[str, tuple[tuple[User, Role], ...]]:
    """Each meter's network operator users (active, with the role for its fuel), by device id."""
    by_party: dict[tuple[str, Role], User] = {}
    for u in sorted(users.values(), key=lambda x: x.user_id):
        if u.status is UserStatus.ACTIVE:
            for role in u.roles & {Role.ED, Role.GT}:
                by_party.setdefault((u.party_id, role), u)
    out: dict[str, tuple[tuple[User, Role], ...]] = {}
    for m in meters:
        mp = registration.meter_point(m.device.mpxn)
        if mp is None:
            continue
        role = Role.ED if m.role is Role.IS else Role.GT
        user = by_party.get((mp.network_operator, role))
        if user is not None:
            out[m.device.device_id] = ((user, role),)
    return out


def _network_request(
    sim: Simulation,
    rng: random.Random,
    m: _Meter,
    network: tuple[tuple[User, Role], ...],
    t: float,
    request_id: str,
) -> bool:
    """Schedule the meter's network operator's own read at ``t`` (False: it has none that the
    catalogue allows for this meter)."""
    if not network:
        return False
    user, role = network[0]
    allowed = [
        (code, w)
        for code, w in NETWORK_SERVICES[role].items()
        if code in CATALOGUE
        and role in CATALOGUE[code].roles
        and m.device.device_type in CATALOGUE[code].device_types
    ]
    if not allowed:
        return False
    code = rng.choices([c for c, _ in allowed], [w for _, w in allowed])[0]
    req = wire.ServiceRequest(
        request_id=request_id,
        role=role,
        service=code,
        device_id=m.device.device_id,
        params=example_params(code, t),
    )
    sim.at(t, partial(sim.request, user.user_id, req))
    return True


def _steady_alerts(
    sim: Simulation,
    rng: random.Random,
    scenario: Scenario,
    meters: list[_Meter],
    inventory: Inventory,
    uncovered: set[str],
    start: float,
    end: float,
) -> int:
    """The background alerts of ``[load.alerts]``: Poisson over the alerts' hour profile, each
    raised by a meter drawn at random, its code drawn from ``STEADY_ALERTS``; a meter behind a
    comms hub the WAN does not reach raises none that could reach the hub."""
    alerts = scenario.load.alerts
    if not meters or alerts.per_meter_per_day <= 0:
        return 0
    hub_of = {s.site_id: s.comms_hub for s in inventory.sites.values()}
    codes = [c for c, _ in STEADY_ALERTS]
    weights = [w for _, w in STEADY_ALERTS]
    supplier = [(c, w) for c, w in STEADY_ALERTS if c not in VOLTAGE_CODES]
    count = 0
    for t in _arrivals(
        rng, alerts.per_meter_per_day * len(meters), alerts.hour_profile, start, end
    ):
        m = rng.choice(meters)
        hub = hub_of.get(m.device.site_id)
        if hub is None or hub in uncovered:
            continue
        if m.device.device_type is DeviceType.ESME:
            code = rng.choices(codes, weights)[0]
        else:
            code = rng.choices([c for c, _ in supplier], [w for _, w in supplier])[0]
        if code in VOLTAGE_CODES:
            volts = VOLTAGE_CODES[code]
            sim.at(t, partial(sim.inject, hub, partial(_voltage, volts)))
            sim.at(
                t + VOLTAGE_EXCURSION_S,
                partial(sim.inject, hub, partial(_voltage, NOMINAL_VOLTAGE_V)),
            )
        else:
            sim.at(t, partial(sim.inject, hub, partial(_routine_alert, m.device.device_id, code)))
        count += 1
    return count


VOLTAGE_CODES: Mapping[str, float] = {
    "8099": (DEFAULT_VOLTAGE.sag_v + DEFAULT_VOLTAGE.extreme_under_v) / 2,
    "8091": (DEFAULT_VOLTAGE.swell_v + DEFAULT_VOLTAGE.extreme_over_v) / 2,
}
"""The RMS voltage a meter measures during a steady-state sag or swell: between the sag (or
swell) threshold and the extreme one, so exactly that alert is raised."""


COS_REQUESTS = ("8.2", "4.1.1", "6.2.7", "11.2", "7.4", "4.18")
"""What a gaining supplier sends first (non-critical, so the simulated user needs no new key)."""


def _half_hourly(registration: RegistrationData, mpxn: str, day: str) -> bool:
    """Whether the register settles a meter point half-hourly on a UK day (yyyy-mm-dd)."""
    mp = registration.meter_point(mpxn)
    return mp is not None and mp.settlement_on(date.fromisoformat(day)) is Settlement.HALF_HOURLY


class _RegisterIds:
    """The sequence numbers of the changes the simulated registers report, per register, in
    the order the changes happen."""

    def __init__(self) -> None:
        self._last: dict[Register, int] = {}

    def next(self, register: Register) -> ChangeId:
        """The id of the register's next change."""
        seq = self._last.get(register, 0) + 1
        self._last[register] = seq
        return ChangeId(register, seq)


def _report(sim: Simulation, change: RegisterChange) -> bool:
    """The register reports one change now, as one batch; whether the hub applied it."""
    sim.register_changes(ChangeBatch(f"scenario:{change.change_id}", (change,)))
    return sim.engine.registers.applied(str(change.change_id))


def _change_supplier(
    sim: Simulation,
    registers: _RegisterIds,
    registration: RegistrationData,
    mpxn: str,
    gaining: str,
    user: User,
    device_id: str,
    messages: int,
) -> None:
    """The register reports ``gaining`` as supplier from the next UK day; on that day the
    gaining supplier's first requests follow."""
    mp = registration.meter_points.get(mpxn)
    now = sim.env.now
    today = uk_date(datetime.fromtimestamp(now, UTC))
    if mp is None or any(r.effective_from > today for r in mp.registrations):
        return  # a change is already pending there
    day = today + timedelta(days=1)
    change = ElectricitySupplierChange(
        change_id=registers.next(Register.ELECTRICITY), effective=day, mpxn=mpxn, supplier=gaining
    )
    if not _report(sim, change):
        return
    first = from_uk_local(datetime.combine(day, time(0, 5)))
    for n, code in enumerate(COS_REQUESTS[: max(0, messages)]):
        req = wire.ServiceRequest(
            request_id=f"cos-{mpxn}-{n}-{int(now)}",
            role=Role.IS,
            service=code,
            device_id=device_id,
            params=example_params(code, first.timestamp()) if schema_for(code) else {},
        )
        sim.at(first.timestamp() + n, partial(sim.hello, user.user_id))
        sim.at(first.timestamp() + n + 0.5, partial(sim.request, user.user_id, req))


def _tenancy(
    sim: Simulation,
    rng: random.Random,
    scenario: Scenario,
    registers: _RegisterIds,
    meters: list[_Meter],
    start: float,
    end: float,
) -> int:
    """``[load.tenancy]``: changes of tenancy the register reports, each effective the next UK
    day, on meter points drawn at random (the register of the meter point's fuel)."""
    churn = scenario.load.tenancy.churn_per_day
    if not meters or churn <= 0:
        return 0
    count = 0
    for t in _arrivals(rng, churn * len(meters), FLAT, start, end):
        m = rng.choice(meters)
        register = Register.ELECTRICITY if m.role is Role.IS else Register.GAS
        sim.at(t, partial(_change_tenancy, sim, registers, register, m.device.mpxn))
        count += 1
    return count


def _change_tenancy(
    sim: Simulation, registers: _RegisterIds, register: Register, mpxn: str
) -> None:
    """The register reports a new occupier at a meter point from the next UK day."""
    day = uk_date(datetime.fromtimestamp(sim.env.now, UTC)) + timedelta(days=1)
    _report(sim, TenancyChange(change_id=registers.next(register), effective=day, mpxn=mpxn))


INSTALLATION_STEPS = ("12.2", "12.2", "8.14.1", "8.11", "8.1.1", "4.1.1")
"""The requests of one installation, in order, one ``[load.installations] step`` apart after
the meter point enters the register: the comms hub's and the meter's pre-notification, the
comms hub installed (8.14.1), the meter added to its device log (8.11), commissioned (8.1.1),
and its first read (4.1.1)."""
NEW_DEVICE_BASE = 0xC0_0000_0000_0000
"""Device ids (EUI-64) of the devices fitted during a run count up from here (two a
premises), clear of the ids a generated fleet uses."""
NEW_MPAN_BASE = 9_000_000_000
"""Serial numbers of the MPANs of new connections count up from here (within a distributor
id), clear of a generated fleet's."""


@dataclass(frozen=True, slots=True)
class _Fitting:
    """One premises fitted during the run: what its installer brings."""

    number: int
    """Its serial in the run (from 1)."""
    meter_point: MeterPoint
    """Its new meter point, as the register reports it."""
    site: Site
    """The premises (its comms hub, lead supplier, WAN region and cell)."""
    chf: Product
    """The comms hub's model."""
    esme: Product
    """The meter's model."""
    user: User
    """The supplier's user that pre-notifies, commissions and reads."""
    key: SigningKey | None
    """The supplier's signing key (8.1.1 is a critical command)."""

    @property
    def chf_id(self) -> str:
        """The comms hub's device id."""
        return f"{NEW_DEVICE_BASE + 2 * self.number:016X}"

    @property
    def esme_id(self) -> str:
        """The meter's device id."""
        return f"{NEW_DEVICE_BASE + 2 * self.number + 1:016X}"


def _installations(
    sim: Simulation,
    rng: random.Random,
    scenario: Scenario,
    registers: _RegisterIds,
    users: dict[str, User],
    inventory: Inventory,
    signing_keys: Mapping[str, SigningKey],
    start: float,
    end: float,
) -> dict[str, int]:
    """``[load.installations]``: premises fitted with a comms hub and an electricity meter,
    each a new connection: its meter point enters the register through the change feed, then
    its supplier's user runs ``INSTALLATION_STEPS``. The premises is in a cell of the fleet
    drawn at random, supplied by an electricity supplier with an active user."""
    load = scenario.load.installations
    planned = {"installations": 0}
    chf = _product(inventory, DeviceType.CHF)
    esme = _product(inventory, DeviceType.ESME)
    suppliers = sorted(
        (u for u in users.values() if Role.IS in u.roles and u.status is UserStatus.ACTIVE),
        key=lambda u: u.user_id,
    )
    places = sorted(inventory.sites.values(), key=lambda x: x.site_id)
    if load.per_day <= 0 or chf is None or esme is None or not suppliers or not places:
        return planned
    registration = sim.engine.access.registration
    networks = sorted(
        {
            (mp.area, mp.network_operator)
            for mp in registration.meter_points.values()
            if mp.fuel is Fuel.ELECTRICITY
        }
    )
    if not networks:
        return planned
    for t in _arrivals(rng, load.per_day, load.hour_profile, start, end):
        number = planned["installations"] + 1
        user = rng.choice(suppliers)
        place = rng.choice(places)
        area, network = rng.choice(networks)
        day = uk_date(datetime.fromtimestamp(t, UTC))
        mp = MeterPoint(
            make_mpan(area, NEW_MPAN_BASE + number),
            Fuel.ELECTRICITY,
            area,
            network,
            (SupplierRegistration(user.party_id, day),),
        )
        site = Site(f"NEW-{number:07d}", "", user.party_id, place.region, place.cell)
        fitting = _Fitting(number, mp, site, chf, esme, user, signing_keys.get(user.party_id))
        sim.at(t, partial(_install, sim, registers, fitting, load.step_s))
        planned["installations"] += 1
    return planned


def _product(inventory: Inventory, device_type: DeviceType) -> Product | None:
    """The first approved model (not early-smart) of a device type."""
    return next(
        (
            p
            for _, p in sorted(inventory.products.items())
            if p.device_type is device_type and not p.early_smart
        ),
        None,
    )


def _install(sim: Simulation, registers: _RegisterIds, fitting: _Fitting, step_s: float) -> None:
    """The new meter point enters the register now; the installation's requests follow, one
    step apart (each is refused by the hub if an earlier one did not do its part)."""
    mp = fitting.meter_point
    day = mp.registrations[0].effective_from
    new = NewMeterPoint(
        change_id=registers.next(Register.ELECTRICITY), effective=day, meter_point=mp
    )
    if not _report(sim, new):
        return
    now = sim.env.now
    for n, req in enumerate(_installation_requests(fitting, now)):
        sim.at(now + (n + 1) * step_s, partial(sim.request, fitting.user.user_id, req))


def _installation_requests(fitting: _Fitting, now: float) -> list[wire.ServiceRequest]:
    """The installation's requests, in ``INSTALLATION_STEPS`` order."""
    chf, esme, site = fitting.chf_id, fitting.esme_id, fitting.site
    mpan = fitting.meter_point.mpxn

    def pre(device_id: str, product: Product, **extra: Value) -> dict[str, Value]:
        return {
            "device_id": device_id,
            "device_type": product.device_type.value,
            "manufacturer": product.manufacturer,
            "model": product.model,
            "firmware": "1.0",
            "mpxn": mpan,
            "site_id": site.site_id,
            **extra,
        }

    commission: dict[str, Value] = {"device_id": esme}
    key = fitting.key
    targets: list[tuple[str | None, dict[str, Value]]] = [
        (None, pre(chf, fitting.chf, region=site.region, cell=site.cell)),
        (None, pre(esme, fitting.esme)),
        (chf, {}),
        (chf, {"action": "add", "other_device_id": esme}),
        (esme, commission),
        (esme, example_params("4.1.1", now)),
    ]
    out = []
    for n, (code, (device, params)) in enumerate(zip(INSTALLATION_STEPS, targets, strict=True)):
        signature = b""
        if CATALOGUE[code].critical and device is not None and key is not None:
            signature = key.sign(code, device, params)
        out.append(
            wire.ServiceRequest(
                request_id=f"in-{fitting.number}-{n}",
                role=Role.IS,
                service=code,
                device_id=device,
                params=params,
                signature=signature,
            )
        )
    return out


def _early_smart(
    sim: Simulation,
    scenario: Scenario,
    candidates: Sequence[Device],
    sites: Mapping[str, Site] | None,
    start: float,
    end: float,
) -> int:
    """``[load.early_smart]``: the fleet's early-smart meters first calling via the hub
    (``simfield.early_smart.contacts``, spread so that ``contacts_per_day`` call a day until
    all have), each handed to the engine as the adoption command the live field gives it."""
    rate = scenario.load.early_smart.contacts_per_day
    meters = [d for d in candidates if d.device_type in EARLY_SMART_METERS]
    if rate <= 0 or not meters:
        return 0
    span_s = len(meters) / rate * 86_400.0
    count = 0
    for contact in early_smart_contacts(meters, start, span_s, scenario.run.seed):
        if contact.at >= end:
            break
        device = next(d for d in meters if d.device_id == contact.device_id)
        command = OperatorCommand(
            f"contact-{device.device_id}",
            OperatorAction.ADOPT,
            device=device,
            site=(sites or {}).get(device.site_id),
            reason="started communicating via the hub",
        )
        sim.at(contact.at, partial(sim.operator_command, command))
        count += 1
    return count


def _power_off(host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.power_outage(now)


def _power_on(host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.power_restored(now)


def _last_gasp(host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.advance(now)


def _voltage(volts: float, host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.set_voltage(volts, now)


def _routine_alert(device_id: str, code: str, host: SiteHost, now: float) -> list[DeviceAlert]:
    return host.premises.raise_alert(device_id, code, now)
