"""A scenario's traffic as bulk flows: what arrives, when in real (UK) time, to whom it goes.

Decides: the flows a scenario implies (on-demand requests per service, scheduled daily and
settlement reads with the hub's random offset, top-ups, change-of-supplier requests, device
and hub alerts, tariff changes (DSP pattern: dispatched at their execution time; Device
pattern: sent over their notice, answered on the device's acknowledgement, and its 8F66
outcome at the execution time an alert flow of its own), firmware images to a share
of the named device type and their activations), each as piecewise-constant arrival rates
over the run in seconds from its start (steady flows follow their UK local hour profile, so
summer time moves them with the clocks; one-off events sit at their real minute, once), with
its service reference, request class and SLA target, priority class, bytes on the WAN and the
share of its deliveries to each recipient role; how the fleet's meters, sites and cells split
over the three regions; and who in a role receives what (suppliers by market share, network
operators by their areas' premises).
Must never: draw random numbers or simulate anything (``meters_sim.bulk`` does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.reference.catalogue import CATALOGUE, FutureDated, PriorityClass
from hub.reference.roles import DeviceType, Role
from hub.reference.uktime import from_uk_local, to_uk_local, uk_date
from meters_sim.scenario import (
    FLAT,
    HourProfile,
    Recipient,
    RecipientScope,
    Region,
    RequestClass,
    Scenario,
    ScheduledReads,
)
from simfield.fleet import AREAS, NETWORK_OPERATORS, REGIONS, SUPPLIERS, FleetMix, fleet_users
from simfield.wan import WanProfile

REGION_SHARE = {Region.NORTH: 5 / 14, Region.CENTRAL: 4 / 14, Region.SOUTH: 5 / 14}
"""Share of meters per region: the 14 distribution areas, 5 North, 4 Central, 5 South."""
REQUEST_BYTES = 400
"""Bytes on the WAN of an ordinary command and its response."""
READ_LOG_BYTES = 2_048
"""A daily read log and its command."""
PROFILE_BYTES = 4_096
"""A day of half-hourly profile data and its command."""
ALERT_BYTES = 200
"""An alert frame."""
LAST_GASP_S = 180.0
"""A comms hub without power for more than this long raises AD1 (3 minutes)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the run over which a flow's arrivals are spread evenly."""

    start_s: float
    """Seconds from the run's start (may lie before it: what falls outside is dropped)."""
    end_s: float
    """End, seconds from the start (equal to ``start_s``: every arrival at that instant)."""
    per_unit: float
    """Expected arrivals per unit of population (meter or site) over the stretch."""


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow of messages of one kind."""

    name: str
    """Label in results (``on demand``, ``device alerts``); with ``service`` it names the
    flow uniquely (``key``)."""
    service: str
    """DUIS service reference of a request, or the alert's label; what ``[sla] services``
    keys match."""
    request_class: RequestClass
    """Which SLA target applies."""
    target_s: float
    """Target response time (from ``[sla.targets]``)."""
    priority: PriorityClass
    """The hub's traffic priority (alerts in their own class, not admitted as requests)."""
    wire_bytes: int
    """Bytes carried over the WAN per message (command and response together)."""
    segments: tuple[Segment, ...]
    """When it arrives."""
    per_site: bool = False
    """Population: the region's sites (True) or its meters (False)."""
    jitter_s: float = 0.0
    """Each arrival is moved later by a uniform random offset of up to this long (the hub's
    schedule window for scheduled reads)."""
    roles: tuple[tuple[Role, float], ...] = ()
    """Share of its deliveries (responses or alerts) to users of each role."""
    clock_from_s: float | None = None
    """Future-dated work: its SLA clock starts at this execution time (seconds from the
    start), not at receipt; an answer before it takes no time."""
    last_gasp: bool = False
    """Raised by a comms hub as its power goes (AD1): sent although the premises are dark."""
    outcome_of: str | None = None
    """The ``key`` of the Device-pattern request flow whose outcomes (8F66) this alert flow
    carries: one alert at the execution time (its only segment's start) from the site of
    each request that reached its device (``segments`` then give its expected count only).
    The request itself is answered on the device's acknowledgement, before the execution
    time, as the hub answers it."""

    @property
    def key(self) -> str:
        """Unique name of the flow in a run, and of its random streams."""
        return self.name if self.service in self.name else f"{self.name} {self.service}"

    @property
    def is_request(self) -> bool:
        """True for service requests (admitted by the hub), False for alerts."""
        return self.priority is not PriorityClass.ALERT

    @property
    def bulk(self) -> bool:
        """Bulk priority: carried with the capacity the other classes leave on a cell."""
        return self.priority is PriorityClass.BULK


@dataclass(frozen=True, slots=True)
class RegionLinks:
    """One region as the bulk model sees it."""

    region: Region
    """Which region."""
    meters: int
    """Expected meters in it."""
    sites: int
    """Sites (comms hubs) in it."""
    cells: int
    """WAN cells its sites are spread over (sites in order, cell after cell)."""
    cell_bytes_per_s: float
    """What one cell carries."""
    wan: WanProfile
    """Latency, loss and retries."""
    coverage: float = 1.0
    """Share of its sites the WAN reaches (drawn per site)."""

    @property
    def name(self) -> str:
        """Its name as results write it (``North``)."""
        return REGIONS[self.region.position]


def _supplier_roles(mix: FleetMix) -> tuple[tuple[Role, float], ...]:
    """Shares of meter-level deliveries per supplier role: import ESMEs (IS), export ESMEs
    (ES) and GSMEs (GS)."""
    electricity = mix.dual_fuel + mix.electricity_only
    gas = 1.0 - mix.electricity_only
    total = electricity * (1.0 + mix.export) + gas
    return (
        (Role.IS, electricity / total),
        (Role.ES, electricity * mix.export / total),
        (Role.GS, gas / total),
    )


def _import_roles(mix: FleetMix) -> tuple[tuple[Role, float], ...]:
    """Import meters only (top-ups, tariffs): IS and GS."""
    electricity = mix.dual_fuel + mix.electricity_only
    gas = 1.0 - mix.electricity_only
    return ((Role.IS, electricity / (electricity + gas)), (Role.GS, gas / (electricity + gas)))


def steady_segments(
    scenario: Scenario, per_unit_per_day: float, profile: HourProfile
) -> tuple[Segment, ...]:
    """Hour by hour over the run, the expected arrivals per unit, each hour weighted by the
    profile's share of its UK local hour (UK offsets are whole hours, so UTC and local hour
    boundaries coincide)."""
    run = scenario.run
    shares = profile.shares()
    out = []
    first_hour = run.start.replace(minute=0, second=0, microsecond=0)
    edge = first_hour
    while edge < run.end:
        nxt = edge + timedelta(hours=1)
        a = max(0.0, (edge - run.start).total_seconds())
        b = min(run.duration_s, (nxt - run.start).total_seconds())
        if b > a:
            hour = to_uk_local(edge).hour
            out.append(Segment(a, b, per_unit_per_day * shares[hour] * (b - a) / 3600.0))
        edge = nxt
    return tuple(out)


def _daily_windows(scenario: Scenario, reads: ScheduledReads) -> tuple[Segment, ...]:
    """One window a UK day, at its UK local start time, for every day the run touches."""
    run = scenario.run
    out = []
    day = uk_date(run.start) - timedelta(days=1)
    while from_uk_local(datetime.combine(day, reads.window_start)) < run.end:
        begin = (
            from_uk_local(datetime.combine(day, reads.window_start)) - run.start
        ).total_seconds()
        out.append(Segment(begin, begin + reads.window_s, reads.share))
        day += timedelta(days=1)
    return tuple(out)


def _at(scenario: Scenario, instant: datetime) -> float:
    return (instant - scenario.run.start).total_seconds()


def devices_per_site(mix: FleetMix, device_type: DeviceType) -> float:
    """Expected devices of a type per site (ESME: import and export; CHF: one a site; PPMID:
    one at each prepayment site)."""
    electricity = mix.dual_fuel + mix.electricity_only
    return {
        DeviceType.ESME: electricity * (1.0 + mix.export),
        DeviceType.GSME: 1.0 - mix.electricity_only,
        DeviceType.CHF: 1.0,
        DeviceType.PPMID: mix.prepayment,
    }.get(device_type, 0.0)


def _priority(code: str) -> PriorityClass:
    service = CATALOGUE.get(code)
    return service.priority if service is not None else PriorityClass.ON_DEMAND


def flows(scenario: Scenario) -> list[Flow]:
    """Every flow of the scenario but those of outage storms (see ``storm_flows``), in a
    fixed order; flows with no arrivals are left out."""
    load = scenario.load
    mix = scenario.fleet.mix
    targets = scenario.sla.targets
    rates = scenario.message_rates()
    suppliers = _supplier_roles(mix)
    imports = _import_roles(mix)
    on_demand_t = targets.target_s(RequestClass.ON_DEMAND)
    out: list[Flow] = []
    weights = load.on_demand.services
    total = sum(weights.values())
    for code, weight in weights.items():
        out.append(
            Flow(
                "on demand",
                code,
                RequestClass.ON_DEMAND,
                on_demand_t,
                _priority(code),
                REQUEST_BYTES,
                steady_segments(
                    scenario, rates.on_demand * weight / total, load.on_demand.hour_profile
                ),
                roles=suppliers,
            )
        )
    import_share_of_meters = dict(suppliers)[Role.IS] / (1.0 + mix.export)
    # settlement reads only where the register settles half-hourly (as the event model does):
    # every non-domestic import meter point, and a share of the domestic ones
    half_hourly = mix.non_domestic + (1.0 - mix.non_domestic) * mix.half_hourly_domestic
    for label, reads, size, factor in (
        ("daily reads", load.daily_reads, READ_LOG_BYTES, 1.0),
        ("settlement reads", load.settlement, PROFILE_BYTES, import_share_of_meters * half_hourly),
    ):
        if reads.share <= 0:
            continue
        segs = tuple(
            Segment(s.start_s, s.end_s, s.per_unit * factor)
            for s in _daily_windows(scenario, reads)
        )
        out.append(
            Flow(
                f"{label} {reads.service}",
                reads.service,
                RequestClass.SCHEDULED,
                targets.target_s(RequestClass.SCHEDULED),
                _priority(reads.service),
                size,
                segs,
                jitter_s=scenario.hub.schedule_window_s,
                roles=suppliers if factor == 1.0 else ((Role.IS, 1.0),),
            )
        )
    out.append(
        Flow(
            "top-ups 2.2",
            "2.2",
            RequestClass.ON_DEMAND,
            on_demand_t,
            _priority("2.2"),
            REQUEST_BYTES,
            steady_segments(scenario, rates.top_ups, load.top_ups.hour_profile),
            roles=imports,
        )
    )
    out.append(
        Flow(
            "change of supplier",
            "change of supplier",
            RequestClass.ON_DEMAND,
            on_demand_t,
            PriorityClass.ON_DEMAND,
            REQUEST_BYTES,
            steady_segments(scenario, rates.change_of_supplier, FLAT),
            roles=imports,
        )
    )
    alert_t = targets.target_s(RequestClass.ALERTS)
    out.append(
        Flow(
            "device alerts",
            "device alerts",
            RequestClass.ALERTS,
            alert_t,
            PriorityClass.ALERT,
            ALERT_BYTES,
            steady_segments(scenario, rates.device_alerts, load.alerts.hour_profile),
            roles=suppliers,
        )
    )
    out.append(
        Flow(
            "hub alerts",
            "hub alerts",
            RequestClass.ALERTS,
            alert_t,
            PriorityClass.ALERT,
            ALERT_BYTES,
            steady_segments(scenario, rates.hub_alerts, FLAT),
            roles=imports,
        )
    )
    for change in load.tariff_changes:
        at = _at(scenario, change.at)
        label = f"{change.service} at {change.at.isoformat()}"
        service = CATALOGUE.get(change.service)
        held_by_hub = service is not None and service.future_dated is FutureDated.DSP
        # Device pattern: sent evenly over the notice (the part before the run was sent
        # already), carried to the device at once and answered on its acknowledgement (the
        # SLA clock from `at`: 0 s); the device acts at `at` and raises 8F66; DSP pattern:
        # held by the hub and carried at `at`
        segment = (
            Segment(at, at, change.share)
            if held_by_hub
            else Segment(at - change.notice_s, at, change.share)
        )
        out.append(
            Flow(
                f"tariff change {label}",
                change.service,
                RequestClass.FUTURE_DATED,
                targets.target_s(RequestClass.FUTURE_DATED),
                _priority(change.service),
                REQUEST_BYTES,
                (segment,),
                roles=imports,
                clock_from_s=at,
            )
        )
        if not held_by_hub:
            out.append(
                Flow(
                    f"future-dated outcome 8F66 of {label}",
                    "8F66",
                    RequestClass.ALERTS,
                    alert_t,
                    PriorityClass.ALERT,
                    ALERT_BYTES,
                    (Segment(at, at, change.share),),
                    roles=imports,
                    outcome_of=out[-1].key,
                )
            )
    for rollout in load.firmware_rollouts:
        at = _at(scenario, rollout.at)
        per_site = rollout.share * devices_per_site(mix, rollout.device_type)
        label = f"{rollout.service} {rollout.device_type.value} at {rollout.at.isoformat()}"
        out.append(
            Flow(
                f"firmware {label}",
                rollout.service,
                RequestClass.FIRMWARE,
                targets.target_s(RequestClass.FIRMWARE),
                _priority(rollout.service),
                rollout.image_bytes,
                (Segment(at, at + rollout.over_s, per_site),),
                per_site=True,
                roles=imports,
            )
        )
        if rollout.activate_after_s is not None:
            a = at + rollout.activate_after_s
            out.append(
                Flow(
                    f"activation 11.3 after {label}",
                    "11.3",
                    RequestClass.ON_DEMAND,
                    on_demand_t,
                    _priority("11.3"),
                    REQUEST_BYTES,
                    (Segment(a, a + rollout.over_s, per_site),),
                    per_site=True,
                    roles=imports,
                )
            )
    return [f for f in out if any(s.per_unit > 0 for s in f.segments)]


def storm_flows(scenario: Scenario) -> tuple[Flow, Flow]:
    """The two flows outage storms raise, whose times the bulk model draws per site: AD1 from
    each comms hub without power for more than 3 minutes, and 8F36 from each restored
    electricity supply, both to the network operator of the area."""
    alert_t = scenario.sla.targets.target_s(RequestClass.ALERTS)
    to_no = ((Role.ED, 1.0),)
    return (
        Flow(
            "outage AD1", "AD1", RequestClass.ALERTS, alert_t, PriorityClass.ALERT,
            ALERT_BYTES, (), per_site=True, roles=to_no, last_gasp=True,
        ),
        Flow(
            "supply restored 8F36", "8F36", RequestClass.ALERTS, alert_t, PriorityClass.ALERT,
            ALERT_BYTES, (), per_site=True, roles=to_no,
        ),
    )  # fmt: skip


def region_links(scenario: Scenario) -> list[RegionLinks]:
    """Each region's meters, sites and cells for the fleet size."""
    meters = scenario.fleet.meters
    sites = scenario.fleet.sites
    out = []
    for region, share in REGION_SHARE.items():
        w = scenario.wan[region]
        region_sites = max(1, round(sites * share))
        out.append(
            RegionLinks(
                region,
                round(meters * share),
                region_sites,
                w.cell_count(region_sites),
                w.cell_capacity_bytes_per_s,
                w.profile(),
                w.coverage,
            )
        )
    return out


def _role_users(role: Role, region: Region) -> Mapping[str, float]:
    """Users of a role and each one's share of the role's deliveries in a region."""
    if role in (Role.IS, Role.GS, Role.ES):
        attr = "gas_weight" if role is Role.GS else "electricity_weight"
        if role is Role.ES:
            holders = {f"u-{s.party_id.lower()}": 1.0 for s in SUPPLIERS if Role.ES in s.roles}
        else:
            holders = {
                f"u-{s.party_id.lower()}": float(getattr(s, attr))
                for s in SUPPLIERS
                if role in s.roles
            }
    elif role is Role.ED:
        holders = {}
        for area in AREAS:
            if area.region == region.position:
                key = f"u-{area.operator.lower()}"
                holders[key] = holders.get(key, 0.0) + area.weight
    else:
        holders = {f"u-{p.lower()}": 1.0 for p, _, r in NETWORK_OPERATORS if r is role}
    total = sum(holders.values())
    return {u: w / total for u, w in holders.items()} if total else {}


_USER_ROLES = {u.user_id: {r.value for r in u.roles} for u in fleet_users()}


def recipient_shares(
    scenario: Scenario, flow: Flow, region: Region
) -> tuple[tuple[Recipient, float], ...]:
    """Share of a flow's deliveries in a region that go to each ``[[recipients]]`` entry
    (what is left goes to users that are always connected): each user takes the entry naming
    it, else the entry naming its role."""
    out: dict[int, float] = {}
    for role, role_share in flow.roles:
        for user, user_share in _role_users(role, region).items():
            entry = scenario.recipient(user, _USER_ROLES.get(user, {role.value}))
            if entry is not None:
                k = scenario.recipients.index(entry)
                out[k] = out.get(k, 0.0) + role_share * user_share
    return tuple((scenario.recipients[k], share) for k, share in sorted(out.items()))


def recipient_label(recipient: Recipient) -> str:
    """How results name a recipient entry (``role IS``, ``user u-supa``)."""
    return f"{'user' if recipient.scope is RecipientScope.USER else 'role'} {recipient.name}"
