"""Simulator scenarios: the TOML scenario format, read into typed, validated settings.

Decides: what a scenario file may say (its sections, keys, types and ranges), the default of
every key that is left out (each default's basis is in ``docs/scenarios.md``), and how a
scenario maps onto the hub's own settings (``EngineConfig``, ``TrafficConfig``, the anomaly
thresholds) and onto the WAN model (``WanProfile`` per region). It also derives the steady
message rates a scenario implies (service messages and alerts per meter per month), so a
scenario can be checked against the real system's shape before it is run.
Must never: open a file (the caller passes the text and a label naming where it came from;
``meters_sim.scenario_files`` reads paths), read the clock, or accept a file with any problem
in it: every problem is reported at once in one ``ScenarioError``, each with the dotted key it
concerns and a reason a person can act on.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from hub.engine import EngineConfig
from hub.engine.outbox import DEFAULT_HOLD_S, DEFAULT_MAX_IN_FLIGHT, DEFAULT_RETRY_S
from hub.flows.firmware import MAX_IMAGE_BYTES
from hub.flows.schedule_spec import DEFAULT_OFFSET_WINDOW_S, MAX_OFFSET_WINDOW_S
from hub.policies.anomaly import (
    DEFAULT_CRITICAL_THRESHOLDS,
    DEFAULT_PERIOD_S,
    DEFAULT_THRESHOLDS,
    AnomalyConfig,
    Thresholds,
)
from hub.policies.sla import SERVICE_LEVEL_MINIMUM, SlaSummary
from hub.reference.catalogue import CATALOGUE, DEFAULT_TARGET_S, FIRMWARE_TARGET_S, FutureDated
from hub.reference.roles import DeviceType, Role
from hub.reference.uktime import from_uk_local, uk_date
from simfield.fleet import REGIONS, FleetMix, fleet_users
from simfield.wan import LatencyKind, ServiceKind, WanProfile

E = TypeVar("E", bound=StrEnum)

DAYS_PER_MONTH = 365.25 / 12
"""Days in an average month (for 'per meter per month' figures)."""
MAX_SITES = 50_000_000
"""Most sites a scenario may ask for (GB has about 30 million premises)."""
HOURS = 24
"""Weights in an hour-of-day profile: one per UK local hour, 00:00-01:00 first."""
_ENGINE = EngineConfig()
"""The engine's own defaults, which ``[hub]`` keys fall back to."""
DEFAULT_SEED = 1
"""Seed used when a scenario gives none."""
DEFAULT_STEP_S = 1.0
"""Bulk-flow time step: one second resolves the 30 s on-demand target to within a few per
cent."""
DEFAULT_REPORT_INTERVAL_S = 3600.0
"""Progress reports every hour (management information is counted hourly or coarser)."""


# ---------------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ScenarioProblem:
    """One problem found in a scenario file."""

    key: str
    """Dotted path of the key concerned, e.g. ``wan.north.loss`` (empty: the whole file)."""
    reason: str
    """What is wrong, in words a person can act on."""


class ScenarioError(ValueError):
    """A scenario file that cannot be used: the file, the first problem's key and reason, and
    every problem found (the first included)."""

    def __init__(
        self, file: str, key: str, reason: str, problems: tuple[ScenarioProblem, ...] = ()
    ) -> None:
        super().__init__(file, key, reason, problems)  # picklable: args rebuild the error
        self.file = file
        """Label of the file (usually its path or name)."""
        self.key = key
        """Dotted key path of the first problem (empty: the whole file, e.g. a syntax error)."""
        self.reason = reason
        """What is wrong with that key."""
        self.problems = problems or (ScenarioProblem(key, reason),)
        """Every problem found, section by section (scenario, fleet, wan, load, hub, sla)."""

    def __str__(self) -> str:
        return "\n".join(_line(self.file, p) for p in self.problems)


def _line(file: str, problem: ScenarioProblem) -> str:
    return (
        f"{file}: {problem.key}: {problem.reason}" if problem.key else f"{file}: {problem.reason}"
    )


# ---------------------------------------------------------------------------------- enums


class Region(StrEnum):
    """A WAN region of the fleet (``simfield.fleet.REGIONS``)."""

    NORTH = "north"
    CENTRAL = "central"
    SOUTH = "south"

    @property
    def position(self) -> int:
        """Position in ``simfield.fleet.REGIONS`` (the fleet's ``site_region`` value)."""
        return [r.lower() for r in REGIONS].index(self.value)

    @property
    def letter(self) -> str:
        """First letter of its cell ids (``N-0001``, as the fleet files write them)."""
        return self.value[0].upper()


class Technology(StrEnum):
    """How a WAN region reaches its comms hubs."""

    LONG_RANGE_RADIO = "long_range_radio"
    CELLULAR_MESH = "cellular_mesh"


def region_of_cell(cell: str) -> Region | None:
    """The region of a cell id written like the fleet files' (``N-0001``), or None."""
    for region in Region:
        if cell.startswith(region.letter + "-"):
            return region
    return None


# ---------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RunSettings:
    """``[scenario]``: what the run is called, when it starts and how long it lasts."""

    name: str
    """Short name of the scenario (required)."""
    start: datetime
    """First instant simulated, UTC (required)."""
    duration_s: float
    """Simulated time covered, seconds (required)."""
    description: str = ""
    """What the scenario is for, in a sentence or two."""
    seed: int = DEFAULT_SEED
    """Seed of every random choice; the same scenario and seed give the same result."""
    step_s: float = DEFAULT_STEP_S
    """Time step of the bulk-flow model: arrivals are counted per step."""
    report_interval_s: float = DEFAULT_REPORT_INTERVAL_S
    """Interval between progress reports."""

    @property
    def end(self) -> datetime:
        """First instant after the run."""
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def as_of(self) -> date:
        """The UK day the run starts on (the day the fleet is generated for)."""
        return uk_date(self.start)


def meters_per_site(mix: FleetMix) -> float:
    """Expected meters (ESME and GSME) per site: an import ESME at every electricity site, a
    second ESME where there is export, a GSME at every gas site."""
    electricity = mix.dual_fuel + mix.electricity_only
    gas = 1.0 - mix.electricity_only
    return electricity * (1.0 + mix.export) + gas


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """``[fleet]``: how big the fleet is and what it is made of."""

    sites: int
    """Hub sites to generate (given, or derived from ``meters``)."""
    mix: FleetMix = field(default_factory=FleetMix)
    """The fleet generator's shares, with the file's overrides."""
    requested_meters: int | None = None
    """The meter count the file asked for, if it gave ``meters`` instead of ``sites``."""

    @property
    def meters_per_site(self) -> float:
        """Expected meters per site under the mix."""
        return meters_per_site(self.mix)

    @property
    def meters(self) -> float:
        """Expected meters in the fleet."""
        return self.sites * self.meters_per_site


@dataclass(frozen=True, slots=True)
class WanRegion:
    """``[wan.<region>]``: one WAN region's links."""

    region: Region
    """Which region."""
    technology: Technology
    """How it reaches comms hubs (sets the defaults of the other keys)."""
    coverage: float
    """Share of the region's comms hubs the WAN reaches; the rest are unreachable (E20)."""
    cells: int | None
    """Fixed number of cells in the region (None: derived from ``sites_per_cell``)."""
    sites_per_cell: int | None
    """Sites per cell (None when ``cells`` is given; by default ``[fleet] sites_per_cell``)."""
    cell_capacity_bytes_per_s: float
    """Bytes per second one cell carries towards its comms hubs."""
    latency: LatencyKind
    """Shape of the round-trip latency."""
    median_s: float
    """Median round trip, seconds."""
    spread: float
    """Lognormal: sigma of the log; uniform: half-width, seconds."""
    loss: float
    """Probability that one attempt is lost."""
    retries: int
    """Attempts after the first before giving up (E21)."""
    retry_timeout_s: float
    """How long the hub waits for an attempt before retrying, seconds."""
    service_time: ServiceTime = field(default_factory=lambda: ServiceTime())
    """Law of the time a cell takes to carry one message (deterministic by default: bytes
    over capacity)."""
    channels: int = 1
    """Messages a cell carries at once, each on a channel of ``cell_capacity_bytes_per_s /
    channels`` (1: one FIFO link)."""
    line_channels: int = 1
    """Commands one comms hub's line carries at once (1: one at a time, as the live hub)."""

    def profile(self) -> WanProfile:
        """The region's WAN model parameters (with its cells' capacity, channels and service
        law, which the event model's ``simfield.wan.CellLink`` uses)."""
        return WanProfile(
            latency=self.latency,
            median_s=self.median_s,
            spread=self.spread,
            loss=self.loss,
            retries=self.retries,
            retry_timeout_s=self.retry_timeout_s,
            line_channels=self.line_channels,
            cell_bytes_per_s=self.cell_capacity_bytes_per_s,
            cell_channels=self.channels,
            service=ServiceKind(self.service_time.law.value),
            sigma=self.service_time.sigma,
            samples=self.service_time.samples,
        )

    def cell_count(self, sites_in_region: int) -> int:
        """Cells the region's sites are spread over (at least one)."""
        if self.cells is not None:
            return self.cells
        per_cell = self.sites_per_cell or FleetMix().sites_per_cell
        return max(1, round(sites_in_region / per_cell))


@dataclass(frozen=True, slots=True)
class TechnologyDefaults:
    """Defaults of a WAN region by technology (see ``docs/scenarios.md`` for their basis)."""

    cell_capacity_bytes_per_s: float
    """Bytes per second a cell carries."""
    latency: LatencyKind
    """Latency shape."""
    median_s: float
    """Median round trip, seconds."""
    spread: float
    """Sigma of the log of the round trip."""
    loss: float
    """Probability that one attempt is lost."""
    retries: int = 2
    """Attempts after the first (two retries after 10 s still answer within the 25 s WAN
    round-trip target)."""
    retry_timeout_s: float = 10.0
    """Wait before a retry, seconds."""
    coverage: float = 0.9925
    """Share of comms hubs reached (the real WAN covers at least 99.25% of premises)."""


TECHNOLOGY_DEFAULTS: Mapping[Technology, TechnologyDefaults] = {
    Technology.LONG_RANGE_RADIO: TechnologyDefaults(
        cell_capacity_bytes_per_s=12_500.0,
        latency=LatencyKind.LOGNORMAL,
        median_s=4.0,
        spread=0.5,
        loss=0.02,
    ),
    Technology.CELLULAR_MESH: TechnologyDefaults(
        cell_capacity_bytes_per_s=1_000_000.0,
        latency=LatencyKind.LOGNORMAL,
        median_s=2.0,
        spread=0.5,
        loss=0.01,
    ),
}
"""WAN defaults by technology (assumed figures; their reasoning is in docs/scenarios.md)."""
REGION_TECHNOLOGY: Mapping[Region, Technology] = {
    Region.NORTH: Technology.LONG_RANGE_RADIO,
    Region.CENTRAL: Technology.CELLULAR_MESH,
    Region.SOUTH: Technology.CELLULAR_MESH,
}
"""Technology of each region by default: North long-range radio, Central and South cellular
with mesh for hard-to-reach sites (as the real WAN)."""


def default_wan(region: Region, technology: Technology | None = None) -> WanRegion:
    """A region's WAN with every key at its default (for its technology)."""
    tech = technology or REGION_TECHNOLOGY[region]
    d = TECHNOLOGY_DEFAULTS[tech]
    return WanRegion(
        region=region,
        technology=tech,
        coverage=d.coverage,
        cells=None,
        sites_per_cell=FleetMix().sites_per_cell,
        cell_capacity_bytes_per_s=d.cell_capacity_bytes_per_s,
        latency=d.latency,
        median_s=d.median_s,
        spread=d.spread,
        loss=d.loss,
        retries=d.retries,
        retry_timeout_s=d.retry_timeout_s,
    )


@dataclass(frozen=True, slots=True)
class HourProfile:
    """Relative weights of the 24 UK local hours of the day, 00:00-01:00 first."""

    weights: tuple[float, ...]
    """24 non-negative weights, not all zero."""

    def shares(self) -> tuple[float, ...]:
        """The weights scaled to add up to 1."""
        total = sum(self.weights)
        return tuple(w / total for w in self.weights)

    def share(self, hour: int) -> float:
        """Share of a day's events that fall in this UK local hour (0-23)."""
        return self.weights[hour] / sum(self.weights)


FLAT = HourProfile((1.0,) * HOURS)
"""Every hour alike."""
WORKING_DAY = HourProfile((1, 1, 1, 1, 1, 1, 2, 4, 6, 8, 8, 8, 7, 7, 7, 7, 6, 5, 4, 3, 2, 2, 1, 1))
"""Suppliers' on-demand traffic: busiest in office hours (assumed shape)."""
EVENING_PEAK = HourProfile(
    (1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 7, 9, 10, 8, 6, 4, 2)
)
"""Prepayment top-ups: people top up after work, peaking 19:00-20:00 (assumed shape)."""


def _default_on_demand_services() -> dict[str, float]:
    return {"4.1.1": 0.40, "4.17": 0.20, "4.8.1": 0.15, "4.18": 0.10, "7.4": 0.05, "11.2": 0.05}


@dataclass(frozen=True, slots=True)
class OnDemandLoad:
    """``[load.on_demand]``: service requests users send now (not scheduled, not diarised)."""

    per_meter_per_day: float = 0.32
    """Requests per meter per day: what is left of 28 messages per meter per month after
    the daily reads, top-ups and changes of supplier (2019 shape)."""
    hour_profile: HourProfile = WORKING_DAY
    """When in the (UK local) day they are sent."""
    services: Mapping[str, float] = field(default_factory=_default_on_demand_services)
    """Relative weight of each service reference (assumed: mostly reads)."""


@dataclass(frozen=True, slots=True)
class ScheduledReads:
    """``[load.daily_reads]`` and ``[load.settlement]``: one DCC-scheduled read a day."""

    share: float
    """Share of the meters it applies to that have such a schedule."""
    service: str
    """Service reference of the scheduled read."""
    window_start: time = time(1, 0)
    """UK local time at which the users' nominal firing times begin (overnight, off-peak)."""
    window_s: float = 4 * 3600.0
    """Nominal firing times are spread evenly over this long; the hub then adds its own
    random offset of up to ``[hub] schedule_window``."""


@dataclass(frozen=True, slots=True)
class TopUpLoad:
    """``[load.top_ups]``: prepayment top-ups (2.2), urgent traffic."""

    per_prepayment_meter_per_day: float = 0.3
    """Top-ups per prepayment meter per day (about two a week; assumed)."""
    hour_profile: HourProfile = EVENING_PEAK
    """When in the (UK local) day people top up."""


@dataclass(frozen=True, slots=True)
class ChangeOfSupplierLoad:
    """``[load.change_of_supplier]``: meter points changing supplier."""

    churn_per_day: float = 0.0005
    """Share of meter points changing supplier each day (about 18% a year; assumed)."""
    messages_per_change: int = 6
    """Service requests the gaining supplier sends per change (6.23 credentials, 3.4 supplier
    name, 1.1.1 tariff, 5.1 schedule, a read, 8.2 inventory; assumed)."""


INSTALLERS_DAY = HourProfile(
    (0, 0, 0, 0, 0, 0, 0, 0, 8, 10, 10, 10, 8, 10, 10, 10, 8, 4, 0, 0, 0, 0, 0, 0)
)
"""When meter installers fit and commission meters: 08:00-18:00 UK local, fewer at lunch and
in the last hour (assumed shape)."""


@dataclass(frozen=True, slots=True)
class InstallationLoad:
    """``[load.installations]``: premises fitted with a comms hub and an electricity meter during
    the run, each through the hub's own services: its meter point enters the register through
    the change feed, the supplier pre-notifies both devices (12.2), the comms hub's
    installation is reported (8.14.1), the meter is added to its device log (8.11) and
    commissioned (8.1.1), then read (4.1.1)."""

    per_day: float = 0.0
    """Installations a day (the real system: about ten thousand a working day)."""
    step_s: float = 300.0
    """Time between one step of an installation and the next (the installer's pace)."""
    hour_profile: HourProfile = INSTALLERS_DAY
    """When in the (UK local) day installations start."""


@dataclass(frozen=True, slots=True)
class TenancyLoad:
    """``[load.tenancy]``: changes of tenancy the register reports (effective the next UK
    day; an ESCO's consent ends with the tenancy)."""

    churn_per_day: float = 0.0
    """Share of meter points changing occupier each day (0: none)."""


@dataclass(frozen=True, slots=True)
class EarlySmartLoad:
    """``[load.early_smart]``: early-smart meters of the fleet (its
    ``early_smart_candidates.csv``) starting to communicate via the hub, each offered to the
    hub's adoption once (``simfield.early_smart``)."""

    contacts_per_day: float = 0.0
    """First contacts a day, until every candidate has called (0: none)."""


@dataclass(frozen=True, slots=True)
class AlertLoad:
    """``[load.alerts]``: alerts raised in normal running (outage storms add their own)."""

    per_meter_per_day: float = 1.5
    """Device alerts per meter per day: July 2022 had 1.6 device alerts per service message;
    1.6 x 28 per month is about 1.5 a day."""
    hub_per_meter_per_day: float = 0.08
    """Hub alerts per meter per day: 86 M hub alerts per 1 bn service messages in July 2022,
    scaled to 28 service messages per month."""
    hour_profile: HourProfile = FLAT
    """When in the (UK local) day they are raised."""


@dataclass(frozen=True, slots=True)
class TariffChange:
    """``[[load.tariff_changes]]``: a diarised tariff change on a share of the meters."""

    at: datetime
    """Execution time, UTC (a date in the file means 00:00 UK local that day)."""
    share: float
    """Share of meters whose tariff changes."""
    service: str = "1.1.1"
    """Service reference (must be one that can be future dated)."""
    notice_s: float = 86_400.0
    """The future-dated requests are sent evenly over this long before ``at`` (what falls
    before the run's start is taken as already held by the hub or the device)."""


@dataclass(frozen=True, slots=True)
class FirmwareRollout:
    """``[[load.firmware_rollouts]]``: a firmware image sent to a share of one device type."""

    at: datetime
    """When the suppliers start sending the update requests, UTC."""
    share: float
    """Share of the devices of ``device_type`` that get the image."""
    device_type: DeviceType = DeviceType.ESME
    """Which devices (PPMIDs are updated with 11.4, the others with 11.1)."""
    image_bytes: int = 1_000_000
    """Image size (the largest messages are about 1 MB, firmware)."""
    over_s: float = 86_400.0
    """The update requests are sent evenly over this long from ``at``."""
    activate_after_s: float | None = None
    """If set, each device's activation (11.3) is requested this long after its update
    request (None: activation is not part of the scenario)."""

    @property
    def service(self) -> str:
        """11.4 for PPMIDs, 11.1 for the others."""
        return "11.4" if self.device_type is DeviceType.PPMID else "11.1"


@dataclass(frozen=True, slots=True)
class OutageStorm:
    """``[[load.outages]]``: sites of one region lose power, then are restored."""

    start: datetime
    """When the power goes, UTC."""
    region: Region
    """Which WAN region is hit."""
    share: float
    """Share of the region's sites that lose power."""
    duration_s: float
    """How long the first site is without power."""
    restore_over_s: float = 3600.0
    """Restorations are spread evenly over this long after ``duration_s`` (assumed)."""

    @property
    def restored_by(self) -> datetime:
        """When the last site has its power back."""
        return self.start + timedelta(seconds=self.duration_s + self.restore_over_s)


@dataclass(frozen=True, slots=True)
class CellOutage:
    """``[[load.cell_outages]]``: WAN cells of one region go down, then come back."""

    start: datetime
    """When the cells go down, UTC."""
    region: Region
    """Which WAN region."""
    share: float
    """Share of the region's cells that go down."""
    duration_s: float
    """How long they stay down."""

    @property
    def end(self) -> datetime:
        """When the cells are back."""
        return self.start + timedelta(seconds=self.duration_s)


class ServiceLaw(StrEnum):
    """Law of a message's service time on a cell link (its mean is always its bytes over the
    channel's capacity)."""

    DETERMINISTIC = "deterministic"  # exactly the mean (M/D/c)
    EXPONENTIAL = "exponential"  # memoryless (M/M/c)
    LOGNORMAL = "lognormal"  # skewed, given the sigma of its log (M/G/c)
    EMPIRICAL = "empirical"  # drawn from given multipliers of the mean (M/G/c)


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """``[wan.<region>.service_time]``: how long a cell takes to carry one message."""

    law: ServiceLaw = ServiceLaw.DETERMINISTIC
    """The law; every law keeps the mean at the message's bytes over the channel capacity."""
    sigma: float = 0.5
    """Lognormal only: standard deviation of the log of the service time."""
    samples: tuple[float, ...] = ()
    """Empirical only: service times as multiples of the mean, drawn with equal probability
    (scaled so that their mean is 1)."""

    @property
    def scv(self) -> float:
        """Squared coefficient of variation of the service time (0 deterministic, 1
        exponential), the figure Pollaczek-Khinchine needs."""
        if self.law is ServiceLaw.DETERMINISTIC:
            return 0.0
        if self.law is ServiceLaw.EXPONENTIAL:
            return 1.0
        if self.law is ServiceLaw.LOGNORMAL:
            return math.expm1(self.sigma**2)
        mean = sum(self.samples) / len(self.samples)
        second = sum(x * x for x in self.samples) / len(self.samples)
        return second / (mean * mean) - 1.0


class RequestClass(StrEnum):
    """The classes of work with their own target response time (the real system's SLA)."""

    ON_DEMAND = "on_demand"  # from receipt of the request
    FUTURE_DATED = "future_dated"  # from the execution time
    SCHEDULED = "scheduled"  # from the schedule's firing time
    ALERTS = "alerts"  # from the device raising it to the hub holding it for its user
    FIRMWARE = "firmware"  # image transfers (11.1, 11.4)


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """``[sla.targets]``: the target response time of each request class, seconds."""

    on_demand: float = DEFAULT_TARGET_S
    """On-demand requests: 30 s end to end, from receipt."""
    future_dated: float = DEFAULT_TARGET_S
    """Future-dated requests: 30 s, measured from the execution time."""
    scheduled: float = DEFAULT_TARGET_S
    """DCC-scheduled requests: 30 s, measured from the firing (execution) time."""
    alerts: float = 60.0
    """Alerts: from the hub receiving one to holding it for its recipient (assumed 60 s)."""
    firmware: float = FIRMWARE_TARGET_S
    """Firmware image transfers: 24 hours."""

    def target_s(self, kind: RequestClass) -> float:
        """The target of a request class."""
        return float(getattr(self, kind.value))


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """A period repeated every UK day, between two UK local times (it may span midnight)."""

    start: time
    """UK local time it begins."""
    end: time
    """UK local time it ends (at or before ``start``: the next day)."""


@dataclass(frozen=True, slots=True)
class Period:
    """A period between two instants, once."""

    start: datetime
    """First instant, UTC."""
    end: datetime
    """First instant after it, UTC."""


class RecipientScope(StrEnum):
    """What a ``[[recipients]]`` entry names."""

    USER = "user"  # one service user, by user id (``u-supa``)
    ROLE = "role"  # every user acting in a role (``IS``, ``ED``)


@dataclass(frozen=True, slots=True)
class Recipient:
    """``[[recipients]]``: how a user, or every user of a role, takes its deliveries
    (responses and alerts) from the hub's outbox. A recipient not named anywhere is always
    connected and acknowledges at once."""

    scope: RecipientScope
    """Whether ``name`` is a user id or a role."""
    name: str
    """The user id (``u-supa``) or the role (``IS``, ``GS``, ``ES``, ``ED``, ``GT``...)."""
    offline: tuple[DailyWindow | Period, ...] = ()
    """When it is disconnected (its gateway down): deliveries are held meanwhile."""
    online: tuple[DailyWindow | Period, ...] = ()
    """If given, the only times it is connected (outside them it is offline)."""
    ack_delay_s: float = 0.0
    """How long it takes to acknowledge a delivery pushed to it."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Deliveries pushed to it and not yet acknowledged, at most."""
    push_rate_per_s: float | None = None
    """Deliveries a second its connection takes (None: limited only by the in-flight window
    and the acknowledgement delay)."""
    reconnect_after_s: float = 0.0
    """After each offline period ends, how long it takes to connect again (say hello); the
    hub then pushes its backlog, oldest first."""

    def drain_rate_per_s(self) -> float:
        """Deliveries a second it can take once connected: the push rate, and no more than a
        full in-flight window per acknowledgement delay (inf when neither limits)."""
        window = self.max_in_flight / self.ack_delay_s if self.ack_delay_s > 0 else math.inf
        push = self.push_rate_per_s if self.push_rate_per_s is not None else math.inf
        return min(window, push)

    def offline_intervals(self, run: RunSettings) -> list[tuple[float, float]]:
        """When it cannot take deliveries, as sorted, disjoint ``(from, to)`` seconds from the
        run's start, clipped to the run: its offline periods (and the gaps between its online
        ones), each extended by ``reconnect_after_s``."""
        span = run.duration_s
        spans = [_window_spans(w, run) for w in self.offline]
        off = [iv for part in spans for iv in part]
        if self.online:
            on = _merge([iv for w in self.online for iv in _window_spans(w, run)])
            edge = 0.0
            for a, b in on:
                if a > edge:
                    off.append((edge, a))
                edge = max(edge, b)
            if edge < span:
                off.append((edge, span))
        grown = [(max(0.0, a), min(span, b + self.reconnect_after_s)) for a, b in off]
        return [(a, b) for a, b in _merge(grown) if b > a]

    def covers(self, user_id: str, roles: Iterable[str]) -> bool:
        """True if this entry applies to a user with this id and these roles."""
        if self.scope is RecipientScope.USER:
            return user_id == self.name
        return self.name in set(roles)


def _window_spans(w: DailyWindow | Period, run: RunSettings) -> list[tuple[float, float]]:
    """A window's spans in seconds from the run's start (daily ones for every UK day the run
    touches, in UK local time, so summer time moves them with the clocks)."""
    origin = run.start
    if isinstance(w, Period):
        return [((w.start - origin).total_seconds(), (w.end - origin).total_seconds())]
    out = []
    first = uk_date(run.start) - timedelta(days=1)
    days = int(run.duration_s // 86_400) + 3
    for k in range(days):
        day = first + timedelta(days=k)
        begin = from_uk_local(datetime.combine(day, w.start))
        end_day = day if w.end > w.start else day + timedelta(days=1)
        end = from_uk_local(datetime.combine(end_day, w.end))
        out.append(((begin - origin).total_seconds(), (end - origin).total_seconds()))
    return out


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True, slots=True)
class IntegrityEvent:
    """``[[load.integrity]]``: frames on the WAN of a region (or some of its cells) are
    corrupted for a period; the head-ends' integrity check refuses them."""

    start: datetime
    """When the corruption begins, UTC."""
    region: Region
    """Which WAN region."""
    share: float
    """Share of the frames carried meanwhile that are corrupted (each direction alike)."""
    duration_s: float
    """How long it lasts."""
    cells: float = 1.0
    """Share of the region's cells affected (1: the whole region)."""
    cell: str | None = None
    """One cell id (``N-0001``) instead of a share of cells."""

    @property
    def end(self) -> datetime:
        """When the frames are clean again."""
        return self.start + timedelta(seconds=self.duration_s)

    @property
    def command_share(self) -> float:
        """Share of commands meanwhile that lose their command or their response frame (the
        hub answers them as it answers any unanswered command: E21 at the response timeout)."""
        return 1.0 - (1.0 - self.share) ** 2


@dataclass(frozen=True, slots=True)
class Load:
    """``[load]``: what the users and the devices send."""

    on_demand: OnDemandLoad = field(default_factory=OnDemandLoad)
    """On-demand requests."""
    daily_reads: ScheduledReads = field(
        default_factory=lambda: ScheduledReads(share=0.55, service="4.6.1")
    )
    """Daily scheduled reads: 55% of meters gives 60% of 28 messages per meter per month."""
    settlement: ScheduledReads = field(
        default_factory=lambda: ScheduledReads(share=0.0, service="4.8.1")
    )
    """Daily half-hourly profile reads for settlement, as a share of electricity import
    meters (0 by default: the 2019 shape predates half-hourly settlement)."""
    top_ups: TopUpLoad = field(default_factory=TopUpLoad)
    """Prepayment top-ups."""
    change_of_supplier: ChangeOfSupplierLoad = field(default_factory=ChangeOfSupplierLoad)
    """Changes of supplier."""
    alerts: AlertLoad = field(default_factory=AlertLoad)
    """Device and hub alerts."""
    tariff_changes: tuple[TariffChange, ...] = ()
    """Diarised tariff changes."""
    firmware_rollouts: tuple[FirmwareRollout, ...] = ()
    """Firmware rollouts."""
    outages: tuple[OutageStorm, ...] = ()
    """Outage storms and their restorations."""
    cell_outages: tuple[CellOutage, ...] = ()
    """WAN cell outages: every comms hub of a cell is unreachable meanwhile."""
    integrity: tuple[IntegrityEvent, ...] = ()
    """WAN integrity events: a share of frames corrupted on a region or cells."""
    installations: InstallationLoad = field(default_factory=InstallationLoad)
    """Premises fitted, commissioned and served during the run."""
    tenancy: TenancyLoad = field(default_factory=TenancyLoad)
    """Changes of tenancy."""
    early_smart: EarlySmartLoad = field(default_factory=EarlySmartLoad)
    """Early-smart meters starting to communicate via the hub."""


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    """``[hub.anomaly]``: default anomaly thresholds for users that set none."""

    warning: int
    """Requests per period per user and service above which the user is warned."""
    quarantine: int
    """Requests per period per user and service above which requests are quarantined."""
    critical_warning: int
    """As ``warning``, for critical services (tariffs, supply, credit)."""
    critical_quarantine: int
    """As ``quarantine``, for critical services."""
    period_s: float = DEFAULT_PERIOD_S
    """Counting period, seconds."""

    def config(self) -> AnomalyConfig:
        """The hub's anomaly configuration for the whole catalogue."""
        return AnomalyConfig.for_services(
            CATALOGUE.services(),
            ordinary=Thresholds(self.warning, self.quarantine, self.period_s),
            critical=Thresholds(self.critical_warning, self.critical_quarantine, self.period_s),
        )


@dataclass(frozen=True, slots=True)
class HubSettings:
    """``[hub]``: the hub's tunables for the run (mapped to ``EngineConfig``)."""

    hold_s: float = DEFAULT_HOLD_S
    """How long responses and alerts are held for an absent user (2 days)."""
    push_retry_s: float = DEFAULT_RETRY_S
    """How long a pushed delivery waits for its acknowledgement before it is pushed again."""
    schedule_window_s: float = DEFAULT_OFFSET_WINDOW_S
    """Schedule firings are spread at random over this long after their nominal time."""
    response_timeout_s: float = _ENGINE.response_timeout_s
    """How long a dispatched command may go unanswered before the user gets E21."""
    capacity_per_s: float = _ENGINE.traffic.capacity_per_s
    """Commands per second the hub may start towards the WAN."""
    near_capacity_share: float = _ENGINE.traffic.near_capacity_share
    """Load, as a share of capacity, from which each user's share is capped."""
    user_share: float = _ENGINE.traffic.user_share
    """Each user's share of capacity while the hub is near capacity."""
    cell_bytes_per_s: float | None = None
    """One cell budget for every cell (None: each cell gets its region's
    ``cell_capacity_bytes_per_s``)."""
    max_pending: int = _ENGINE.max_pending
    """Accepted requests awaiting a device response, hub-wide; beyond it: busy (H8)."""
    max_per_comms_hub: int = _ENGINE.max_per_comms_hub
    """Requests queued for one comms hub; beyond it: busy (H8)."""
    busy_retry_s: float = _ENGINE.busy_retry_s
    """The retry-after given with a busy answer."""
    anomaly: AnomalySettings | None = None
    """Anomaly thresholds (None: the hub's documented defaults)."""


@dataclass(frozen=True, slots=True)
class SlaThresholds:
    """``[sla]``: what makes a run fail."""

    min_within_target: float = SERVICE_LEVEL_MINIMUM
    """Least share of all responses within their target time (the service level minimum)."""
    services: Mapping[str, float] = field(default_factory=dict)
    """Least share within target per service reference; a key such as ``4.8`` covers every
    variant (``4.8.1``, ``4.8.2``...)."""
    max_outbox_depth: int | None = None
    """Most deliveries held in the outbox at any moment (None: not checked)."""
    max_expiries: int = 0
    """Most deliveries that may expire unacknowledged (a simulated user is always connected,
    so any expiry means a delivery was held past its hold time)."""
    max_busy_share: float | None = None
    """Largest share of requests refused as busy (H8) (None: not checked)."""
    targets: SlaTargets = field(default_factory=lambda: SlaTargets())
    """Target response time of each request class (``[sla.targets]``)."""

    def breaches(
        self,
        summaries: Iterable[SlaSummary],
        *,
        max_outbox_depth: int = 0,
        expiries: int = 0,
        busy_share: float = 0.0,
    ) -> list[str]:
        """Every threshold the run's figures break, in words (empty: the run passes).

        ``summaries`` are the per-service summaries of ``hub.policies.sla.summarise``.
        """
        out: list[str] = []
        rows = list(summaries)
        total = sum(s.count for s in rows)
        if total:
            within = sum(s.count * s.within_target for s in rows) / total
            if within < self.min_within_target:
                out.append(
                    f"{within:.2%} of responses within target, below the minimum "
                    f"{self.min_within_target:.2%}"
                )
        for prefix, minimum in self.services.items():
            group = [s for s in rows if _covers(prefix, s.key[0])]
            count = sum(s.count for s in group)
            if not count:
                continue
            within = sum(s.count * s.within_target for s in group) / count
            if within < minimum:
                out.append(
                    f"service {prefix}: {within:.2%} within target, below the minimum {minimum:.2%}"
                )
        if self.max_outbox_depth is not None and max_outbox_depth > self.max_outbox_depth:
            out.append(
                f"outbox held {max_outbox_depth} deliveries, above the maximum "
                f"{self.max_outbox_depth}"
            )
        if expiries > self.max_expiries:
            out.append(f"{expiries} deliveries expired, above the maximum {self.max_expiries}")
        if self.max_busy_share is not None and busy_share > self.max_busy_share:
            out.append(
                f"{busy_share:.2%} of requests refused as busy, above the maximum "
                f"{self.max_busy_share:.2%}"
            )
        return out


def _covers(prefix: str, code: str) -> bool:
    return code == prefix or code.startswith(prefix + ".")


@dataclass(frozen=True, slots=True)
class MessageRates:
    """Steady message rates a scenario implies, per meter per day (events such as tariff
    changes, firmware rollouts and outage storms come on top)."""

    on_demand: float
    """On-demand service requests."""
    daily_reads: float
    """Daily scheduled reads."""
    settlement_reads: float
    """Daily half-hourly profile reads for settlement."""
    top_ups: float
    """Prepayment top-ups."""
    change_of_supplier: float
    """Requests sent for changes of supplier."""
    device_alerts: float
    """Device alerts."""
    hub_alerts: float
    """Hub alerts."""

    @property
    def service_per_day(self) -> float:
        """Service messages (requests, each answered once) per meter per day."""
        return (
            self.on_demand
            + self.daily_reads
            + self.settlement_reads
            + self.top_ups
            + self.change_of_supplier
        )

    @property
    def service_per_month(self) -> float:
        """Service messages per meter per month: the real system's 'messages per meter per
        month' (about 28 in 2019)."""
        return self.service_per_day * DAYS_PER_MONTH

    @property
    def alerts_per_month(self) -> float:
        """Device and hub alerts per meter per month."""
        return (self.device_alerts + self.hub_alerts) * DAYS_PER_MONTH

    @property
    def daily_burst_share(self) -> float:
        """Share of the service messages that are the daily bursts of scheduled readings."""
        service = self.service_per_day
        return (self.daily_reads + self.settlement_reads) / service if service else 0.0

    def fleet_per_s(self, meters: float) -> float:
        """Average messages per second (service messages and alerts) for a fleet."""
        per_day = self.service_per_day + self.device_alerts + self.hub_alerts
        return per_day * meters / 86_400.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole scenario: run, fleet, WAN, load, hub settings and SLA thresholds."""

    file: str
    """Where it was read from (the label given to ``load_scenario``)."""
    run: RunSettings
    """``[scenario]``."""
    fleet: FleetSettings
    """``[fleet]``."""
    wan: Mapping[Region, WanRegion]
    """``[wan.<region>]``, every region present."""
    load: Load = field(default_factory=Load)
    """``[load]``."""
    hub: HubSettings = field(default_factory=HubSettings)
    """``[hub]``."""
    sla: SlaThresholds = field(default_factory=SlaThresholds)
    """``[sla]``."""
    recipients: tuple[Recipient, ...] = ()
    """``[[recipients]]``: users (or roles) that are not always connected or acknowledge
    late; a user matching several entries takes the first (entries naming a user come
    before those naming a role)."""

    def recipient(self, user_id: str, roles: Iterable[str]) -> Recipient | None:
        """The ``[[recipients]]`` entry that applies to a user (None: always connected,
        acknowledging at once). An entry naming the user wins over one naming its role."""
        roles = set(roles)
        for scope in (RecipientScope.USER, RecipientScope.ROLE):
            for r in self.recipients:
                if r.scope is scope and r.covers(user_id, roles):
                    return r
        return None

    def wan_profile(self, region: Region | str) -> WanProfile:
        """The WAN model parameters of a region (``north``, ``central`` or ``south``)."""
        return self.wan[Region(region.lower())].profile()

    def to_engine_config(self, cells: Iterable[str] = ()) -> EngineConfig:
        """The hub engine's settings for this run.

        Cell budgets: ``[hub] cell_bytes_per_s`` for every cell if set; otherwise each of
        ``cells`` (ids like ``N-0001``) gets its region's ``cell_capacity_bytes_per_s``, and
        any other cell the smallest regional capacity (never more than a cell can carry).
        """
        hub = self.hub
        overrides: dict[str, float] = {}
        if hub.cell_bytes_per_s is not None:
            budget = hub.cell_bytes_per_s
        else:
            budget = min(w.cell_capacity_bytes_per_s for w in self.wan.values())
            for cell in cells:
                region = region_of_cell(cell)
                if region is not None:
                    overrides[cell] = self.wan[region].cell_capacity_bytes_per_s
        traffic = replace(
            _ENGINE.traffic,
            capacity_per_s=hub.capacity_per_s,
            near_capacity_share=hub.near_capacity_share,
            user_share=hub.user_share,
            cell_bytes_per_s=budget,
            cell_bytes_overrides=overrides,
        )
        return EngineConfig(
            hold_s=hub.hold_s,
            retry_s=hub.push_retry_s,
            max_pending=hub.max_pending,
            max_per_comms_hub=hub.max_per_comms_hub,
            busy_retry_s=hub.busy_retry_s,
            response_timeout_s=hub.response_timeout_s,
            anomaly=hub.anomaly.config() if hub.anomaly is not None else None,
            traffic=traffic,
            schedule_seed=self.run.seed,
            schedule_window_s=hub.schedule_window_s,
        )

    def message_rates(self) -> MessageRates:
        """The steady per-meter message rates the load implies under the fleet mix."""
        mix = self.fleet.mix
        load = self.load
        per_site = meters_per_site(mix)
        import_share = (mix.dual_fuel + mix.electricity_only) / per_site
        return MessageRates(
            on_demand=load.on_demand.per_meter_per_day,
            daily_reads=load.daily_reads.share,
            settlement_reads=load.settlement.share * import_share,
            top_ups=mix.prepayment * load.top_ups.per_prepayment_meter_per_day,
            change_of_supplier=load.change_of_supplier.churn_per_day
            * load.change_of_supplier.messages_per_change,
            device_alerts=load.alerts.per_meter_per_day,
            hub_alerts=load.alerts.hub_per_meter_per_day,
        )


# ---------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class _Range:
    """An allowed interval of numbers."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    """``low`` itself is not allowed."""

    def contains(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def text(self) -> str:
        low = "" if self.low is None else _num(self.low)
        high = "" if self.high is None else _num(self.high)
        if low and high:
            return (
                f"more than {low} and at most {high}" if self.low_open else f"from {low} to {high}"
            )
        if low:
            return f"more than {low}" if self.low_open else f"at least {low}"
        return f"at most {high}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


SHARE = _Range(0.0, 1.0)
"""A share, 0 to 1."""
POSITIVE_SHARE = _Range(0.0, 1.0, low_open=True)
"""A share above 0, up to 1."""
NON_NEGATIVE = _Range(0.0)
POSITIVE = _Range(0.0, low_open=True)
COUNT = _Range(1.0)
"""A whole number of at least 1."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_DURATION_UNITS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_DURATION_HELP = "give seconds (a number) or a string like '90s', '15m', '6h', '1d', '1h30m'"
_INSTANT_HELP = (
    "give a date-time with a UTC offset, e.g. 2025-03-03T00:00:00Z, or a date "
    "(meaning 00:00 UK local time that day)"
)


def parse_duration(value: object) -> float | None:
    """Seconds from a number or a string such as ``90s``, ``15m``, ``6h``, ``1d``, ``2w`` or
    ``1h30m`` (units largest first, each once); None if it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = "".join(value.split()).lower()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_PART.findall(text)
            if not text or "".join(n + u for n, u in parts) != text:
                return None
            order = [list(_DURATION_UNITS).index(u) for _, u in parts]
            if order != sorted(set(order)):
                return None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Section:
    """One TOML table being read: hands out typed values, records problems with their dotted
    keys, and finally reports the keys nobody asked for."""

    def __init__(self, problems: list[ScenarioProblem], path: str, data: object) -> None:
        self._problems = problems
        self.path = path
        self._data: dict[str, object] = {}
        self.valid = data is None or isinstance(data, dict)
        """False when the value was not a table (already reported)."""
        if isinstance(data, dict):
            self._data = {str(k): v for k, v in data.items()}
        elif data is not None:
            problems.append(ScenarioProblem(path, f"must be a table, got {_type_name(data)}"))
        self._used: set[str] = set()

    # ---- plumbing

    def key(self, name: str) -> str:
        """The dotted path of one of its keys."""
        shown = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'
        return f"{self.path}.{shown}" if self.path else shown

    def problem(self, name: str, reason: str) -> None:
        """Record a problem with one of its keys (empty name: the table itself)."""
        self._problems.append(ScenarioProblem(self.key(name) if name else self.path, reason))

    def has(self, name: str) -> bool:
        """True if the key is present."""
        return name in self._data

    def names(self) -> list[str]:
        """Every key present."""
        return list(self._data)

    def raw(self, name: str, required: bool = False) -> object | None:
        """The value as TOML gave it (None when absent; a missing required key is recorded)."""
        self._used.add(name)
        if name not in self._data:
            if required:
                self.problem(name, "missing: this key is required")
            return None
        return self._data[name]

    def finish(self) -> None:
        """Record every key that was never asked for."""
        for name in self._data:
            if name not in self._used:
                known = ", ".join(sorted(self._used)) or "none"
                self.problem(name, f"unknown key (expected one of: {known})")

    # ---- typed values

    def text(self, name: str, default: str, required: bool = False, non_empty: bool = False) -> str:
        value = self.raw(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problem(name, f"must be a string, got {_type_name(value)}")
            return default
        if non_empty and not value.strip():
            self.problem(name, "must not be empty")
            return default
        return value

    def number(self, name: str, default: float, allowed: _Range, required: bool = False) -> float:
        value = self.optional_number(name, allowed, required)
        return default if value is None else value

    def optional_number(self, name: str, allowed: _Range, required: bool = False) -> float | None:
        value = self.raw(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(name, f"must be a number, got {_type_name(value)}")
            return None
        number = float(value)
        if not math.isfinite(number):
            self.problem(name, f"must be a finite number, got {value}")
            return None
        if not allowed.contains(number):
            self.problem(name, f"must be {allowed.text()}, got {_num(number)}")
            return None
        return number

    def integer(self, name: str, default: int, allowed: _Range, required: bool = False) -> int:
        value = self.optional_integer(name, allowed, required)
        return default if value is None else value

    def optional_integer(self, name: str, allowed: _Range, required: bool = False) -> int | None:
        value = self.raw(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"must be a whole number, got {_type_name(value)}")
            return None
        if not allowed.contains(value):
            self.problem(name, f"must be {allowed.text()}, got {_num(value)}")
            return None
        return value

    def duration(
        self, name: str, default: float, allowed: _Range = POSITIVE, required: bool = False
    ) -> float:
        value = self.optional_duration(name, allowed, required)
        return default if value is None else value

    def optional_duration(
        self, name: str, allowed: _Range = POSITIVE, required: bool = False
    ) -> float | None:
        value = self.raw(name, required)
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds is None:
            self.problem(name, f"not a duration: {value!r}; {_DURATION_HELP}")
            return None
        if not allowed.contains(seconds):
            self.problem(name, f"must be {allowed.text()} seconds, got {_num(seconds)}")
            return None
        return seconds

    def instant(self, name: str, required: bool = False) -> datetime | None:
        """A UTC instant: an offset date-time (TOML or ISO string), or a date meaning
        00:00 UK local time."""
        value = self.raw(name, required)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = (
                    date.fromisoformat(value)
                    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip())
                    else datetime.fromisoformat(value.strip())
                )
            except ValueError as exc:
                self.problem(name, f"not a valid date-time: {value!r} ({exc}); {_INSTANT_HELP}")
                return None
        if isinstance(value, datetime):
            if value.tzinfo is None:
                self.problem(name, f"{value.isoformat()} has no UTC offset; {_INSTANT_HELP}")
                return None
            return value.astimezone(UTC)
        if isinstance(value, date):
            return from_uk_local(datetime.combine(value, time()))
        self.problem(name, f"must be a date-time, got {_type_name(value)}; {_INSTANT_HELP}")
        return None

    def time_of_day(self, name: str, default: time) -> time:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = time.fromisoformat(value.strip())
            except ValueError:
                self.problem(name, f"not a time of day: {value!r}; give 'HH:MM', e.g. '01:30'")
                return default
        if not isinstance(value, time) or isinstance(value, datetime):
            self.problem(name, f"must be a time of day like '01:30', got {_type_name(value)}")
            return default
        if value.tzinfo is not None:
            self.problem(name, "give a UK local time without an offset, e.g. '01:30'")
            return default
        return value

    def choice(self, name: str, kind: type[E], default: E) -> E:
        value = self.raw(name)
        if value is None:
            return default
        allowed = ", ".join(repr(m.value) for m in kind)
        if not isinstance(value, str):
            self.problem(name, f"must be one of {allowed}, got {_type_name(value)}")
            return default
        for member in kind:
            if member.value == value:
                return member
        self.problem(name, f"must be one of {allowed}, got {value!r}")
        return default

    def hour_profile(self, name: str, default: HourProfile) -> HourProfile:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, list):
            self.problem(name, f"must be an array of {HOURS} weights, got {_type_name(value)}")
            return default
        if len(value) != HOURS:
            self.problem(
                name,
                f"needs {HOURS} weights, one per UK local hour from 00:00, got {len(value)}",
            )
            return default
        weights: list[float] = []
        for hour, w in enumerate(value):
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w):
                self.problem(name, f"weight of hour {hour} must be a number, got {w!r}")
                return default
            if w < 0:
                self.problem(name, f"weight of hour {hour} must not be negative, got {w}")
                return default
            weights.append(float(w))
        if sum(weights) <= 0:
            self.problem(name, "at least one hour needs a weight above 0")
            return default
        return HourProfile(tuple(weights))

    def table(self, name: str) -> _Section:
        """A sub-table (absent: an empty one)."""
        return _Section(self._problems, self.key(name), self.raw(name))

    def tables(self, name: str) -> list[_Section]:
        """An array of tables (absent: none)."""
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(
                name, f"must be an array of tables ([[{self.key(name)}]]), got {_type_name(value)}"
            )
            return []
        return [_Section(self._problems, f"{self.key(name)}[{i}]", v) for i, v in enumerate(value)]


# ---------------------------------------------------------------------------------- sections


def _run(top: _Section) -> RunSettings | None:
    s = top.table("scenario")
    name = s.text("name", "", required=True, non_empty=True)
    description = s.text("description", "")
    seed = s.integer("seed", DEFAULT_SEED, _Range(0, 2**63 - 1))
    start = s.instant("start", required=True)
    duration = s.optional_duration("duration", required=True)
    step = s.duration("step", DEFAULT_STEP_S)
    report = s.duration("report_interval", DEFAULT_REPORT_INTERVAL_S)
    if step > report:
        s.problem("step", f"must not be longer than report_interval ({_num(report)} s)")
    if duration is not None and step > duration:
        s.problem("step", f"must not be longer than the duration ({_num(duration)} s)")
    s.finish()
    if start is None or duration is None or not name:
        return None
    return RunSettings(name, start, duration, description, seed, step, report)


def _fleet(top: _Section) -> FleetSettings | None:
    s = top.table("fleet")
    sites = s.optional_integer("sites", _Range(1, MAX_SITES))
    meters = s.optional_integer("meters", _Range(1, 2 * MAX_SITES))
    base = FleetMix()
    overrides: dict[str, Any] = {}
    for f in fields(FleetMix):
        if f.type in ("int", int):
            value_i = s.optional_integer(f.name, COUNT)
            if value_i is not None:
                overrides[f.name] = value_i
        else:
            value_f = s.optional_number(f.name, SHARE)
            if value_f is not None:
                overrides[f.name] = value_f
    mix = replace(base, **overrides)
    if mix.dual_fuel + mix.electricity_only > 1.0:
        s.problem(
            "electricity_only",
            f"dual_fuel + electricity_only must be at most 1 (the rest are gas-only sites), "
            f"got {mix.dual_fuel + mix.electricity_only:g}",
        )
    if mix.prepayment > 1.0 - mix.non_domestic:
        s.problem(
            "prepayment",
            f"prepayment sites are domestic, so prepayment must be at most 1 - non_domestic "
            f"({1.0 - mix.non_domestic:g}), got {mix.prepayment:g}",
        )
    if s.has("sites") and s.has("meters"):
        s.problem("meters", "give either sites or meters, not both")
    elif not s.has("sites") and not s.has("meters"):
        s.problem("sites", "missing: give the fleet size as sites (or as meters)")
    s.finish()
    if sites is None and meters is not None:
        sites = max(1, round(meters / meters_per_site(mix)))
        if sites > MAX_SITES:
            s.problem("meters", f"that is {sites:,} sites, more than {MAX_SITES:,}")
            sites = None
    if sites is None or (s.has("sites") and s.has("meters")):
        return None
    return FleetSettings(sites, mix, meters if s.has("meters") else None)


def _latency(s: _Section, tech: TechnologyDefaults) -> tuple[LatencyKind, float, float]:
    t = s.table("latency")
    kind = t.choice("kind", LatencyKind, tech.latency)
    median = t.number("median_s", tech.median_s, NON_NEGATIVE)
    spread = t.number("spread", tech.spread, _Range(0.0, 5.0))
    if kind is not LatencyKind.ZERO and median <= 0 and t.has("median_s"):
        t.problem(
            "median_s", f"must be more than 0 for {kind.value} latency (kind = 'zero' for none)"
        )
    t.finish()
    return kind, median, spread


def _service_time(t: _Section) -> ServiceTime:
    law = t.choice("law", ServiceLaw, ServiceLaw.DETERMINISTIC)
    sigma = t.number("sigma", 0.5, _Range(0.0, 5.0, low_open=True))
    if t.has("sigma") and law is not ServiceLaw.LOGNORMAL:
        t.problem("sigma", "applies to law = 'lognormal' only")
    samples: tuple[float, ...] = ()
    raw = t.raw("samples")
    if raw is not None:
        if law is not ServiceLaw.EMPIRICAL:
            t.problem("samples", "applies to law = 'empirical' only")
        elif (
            not isinstance(raw, list)
            or not raw
            or not all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
                for x in raw
            )
            or min(raw) < 0
            or not sum(raw) > 0
        ):
            t.problem("samples", "must be a non-empty array of non-negative numbers, not all 0")
        else:
            total = sum(float(x) for x in raw)
            samples = tuple(float(x) * len(raw) / total for x in raw)
    elif law is ServiceLaw.EMPIRICAL:
        t.problem("samples", "missing: law = 'empirical' needs its samples")
    t.finish()
    if law is ServiceLaw.EMPIRICAL and not samples:
        return ServiceTime()
    return ServiceTime(law, sigma, samples)


def _wan(top: _Section, default_per_cell: int) -> dict[Region, WanRegion]:
    s = top.table("wan")
    out: dict[Region, WanRegion] = {}
    for region in Region:
        r = s.table(region.value)
        tech = r.choice("technology", Technology, REGION_TECHNOLOGY[region])
        d = TECHNOLOGY_DEFAULTS[tech]
        coverage = r.number("coverage", d.coverage, POSITIVE_SHARE)
        cells = r.optional_integer("cells", COUNT)
        per_cell = r.optional_integer("sites_per_cell", COUNT)
        if cells is not None and per_cell is not None:
            r.problem("cells", "give either cells or sites_per_cell, not both")
        capacity = r.number("cell_capacity_bytes_per_s", d.cell_capacity_bytes_per_s, POSITIVE)
        kind, median, spread = _latency(r, d)
        loss = r.number("loss", d.loss, _Range(0.0, 1.0))
        if loss >= 1.0:
            r.problem("loss", "must be below 1 (with loss 1 no command ever gets through)")
        retries = r.integer("retries", d.retries, _Range(0, 100))
        retry_timeout = r.duration("retry_timeout_s", d.retry_timeout_s)
        service_time = _service_time(r.table("service_time"))
        channels = r.integer("channels", 1, _Range(1, 1_000))
        line_channels = r.integer("line_channels", 1, _Range(1, 1_000))
        r.finish()
        if cells is None and per_cell is None:
            per_cell = default_per_cell
        out[region] = WanRegion(
            region, tech, coverage, cells, None if cells is not None else per_cell, capacity,
            kind, median, spread, loss, retries, retry_timeout, service_time, channels,
            line_channels,
        )  # fmt: skip
    for name in s.names():
        if name not in {r.value for r in Region}:
            s.problem(name, "unknown region (expected north, central or south)")
    return out


class _Use(StrEnum):
    """What a scenario uses a service for (each use has its own catalogue condition)."""

    ON_DEMAND = "on_demand"  # an on-demand device service
    SCHEDULED = "scheduled"  # a DCC-schedulable read
    FUTURE_DATED = "future_dated"  # a diarised change


def _catalogue_service(s: _Section, name: str, code: str, use: _Use) -> bool:
    """True if ``code`` is a service the scenario may use (problems recorded otherwise)."""
    service = CATALOGUE.get(code)
    if service is None:
        s.problem(name, f"{code!r} is not a service reference of the catalogue")
        return False
    if not service.in_scope:
        s.problem(name, f"service {code} ({service.name}) is not executed by this release")
        return False
    if use is _Use.SCHEDULED and not service.schedulable:
        s.problem(name, f"service {code} ({service.name}) cannot be DCC scheduled")
        return False
    if use is _Use.FUTURE_DATED and service.future_dated is FutureDated.NONE:
        s.problem(name, f"service {code} ({service.name}) cannot be future dated")
        return False
    if use is _Use.ON_DEMAND and (service.non_device or not service.on_demand):
        s.problem(name, f"service {code} ({service.name}) is not an on-demand device service")
        return False
    return True


def _scheduled(s: _Section, default: ScheduledReads) -> ScheduledReads:
    share = s.number("share", default.share, SHARE)
    service = s.text("service", default.service)
    if s.has("service"):
        _catalogue_service(s, "service", service, _Use.SCHEDULED)
    start = s.time_of_day("window_start", default.window_start)
    window = s.duration("window", default.window_s, _Range(0.0, 86_400.0, low_open=True))
    s.finish()
    return ScheduledReads(share, service, start, window)


def _in_run(s: _Section, name: str, at: datetime | None, run: RunSettings | None) -> None:
    if at is not None and run is not None and not run.start <= at < run.end:
        s.problem(
            name,
            f"{at.isoformat()} is outside the run ({run.start.isoformat()} to "
            f"{run.end.isoformat()})",
        )


def _load(top: _Section, run: RunSettings | None) -> Load:
    s = top.table("load")
    d = Load()

    o = s.table("on_demand")
    od = d.on_demand
    services = dict(od.services)
    if o.has("services"):
        st = o.table("services")
        services = {}
        all_known = True
        for code in st.names():
            weight = st.number(code, 0.0, NON_NEGATIVE)
            if _catalogue_service(st, code, code, _Use.ON_DEMAND):
                services[code] = weight
            else:
                all_known = False
        if not st.valid:
            services = dict(od.services)
        elif not st.names():
            st.problem("", "needs at least one service reference with a weight")
        elif all_known and not sum(services.values()) > 0:
            st.problem("", "at least one service needs a weight above 0")
    on_demand = OnDemandLoad(
        o.number("per_meter_per_day", od.per_meter_per_day, NON_NEGATIVE),
        o.hour_profile("hour_profile", od.hour_profile),
        services,
    )
    o.finish()

    daily = _scheduled(s.table("daily_reads"), d.daily_reads)
    settlement = _scheduled(s.table("settlement"), d.settlement)

    t = s.table("top_ups")
    top_ups = TopUpLoad(
        t.number(
            "per_prepayment_meter_per_day", d.top_ups.per_prepayment_meter_per_day, NON_NEGATIVE
        ),
        t.hour_profile("hour_profile", d.top_ups.hour_profile),
    )
    t.finish()

    c = s.table("change_of_supplier")
    cos = ChangeOfSupplierLoad(
        c.number("churn_per_day", d.change_of_supplier.churn_per_day, SHARE),
        c.integer("messages_per_change", d.change_of_supplier.messages_per_change, COUNT),
    )
    c.finish()

    a = s.table("alerts")
    alerts = AlertLoad(
        a.number("per_meter_per_day", d.alerts.per_meter_per_day, NON_NEGATIVE),
        a.number("hub_per_meter_per_day", d.alerts.hub_per_meter_per_day, NON_NEGATIVE),
        a.hour_profile("hour_profile", d.alerts.hour_profile),
    )
    a.finish()

    tariffs = []
    for e in s.tables("tariff_changes"):
        at = e.instant("at", required=True)
        _in_run(e, "at", at, run)
        share = e.optional_number("share", POSITIVE_SHARE, required=True)
        service = e.text("service", "1.1.1")
        if e.has("service"):
            _catalogue_service(e, "service", service, _Use.FUTURE_DATED)
        notice = e.duration("notice", 86_400.0, NON_NEGATIVE)
        e.finish()
        if at is not None and share is not None:
            tariffs.append(TariffChange(at, share, service, notice))

    rollouts = []
    firmware_types = {DeviceType.ESME, DeviceType.GSME, DeviceType.CHF, DeviceType.PPMID}
    for e in s.tables("firmware_rollouts"):
        at = e.instant("at", required=True)
        _in_run(e, "at", at, run)
        share = e.optional_number("share", POSITIVE_SHARE, required=True)
        device_type = e.choice("device_type", DeviceType, DeviceType.ESME)
        if device_type not in firmware_types:
            names = ", ".join(sorted(t.value for t in firmware_types))
            e.problem("device_type", f"firmware goes to {names}, not {device_type.value}")
        size = e.integer("image_bytes", 1_000_000, _Range(1, MAX_IMAGE_BYTES))
        over = e.duration("over", 86_400.0, NON_NEGATIVE)
        activate = e.optional_duration("activate_after", NON_NEGATIVE)
        e.finish()
        if at is not None and share is not None:
            rollouts.append(FirmwareRollout(at, share, device_type, size, over, activate))

    storms = []
    for e in s.tables("outages"):
        start = e.instant("start", required=True)
        _in_run(e, "start", start, run)
        region = _region(e)
        share = e.optional_number("share", POSITIVE_SHARE, required=True)
        duration = e.optional_duration("duration", required=True)
        restore = e.duration("restore_over", 3600.0, NON_NEGATIVE)
        e.finish()
        if start is not None and region is not None and share is not None and duration:
            storms.append(OutageStorm(start, region, share, duration, restore))

    cell_outages = []
    for e in s.tables("cell_outages"):
        start = e.instant("start", required=True)
        _in_run(e, "start", start, run)
        cell_region = _region(e)
        share = e.optional_number("share", POSITIVE_SHARE, required=True)
        duration = e.optional_duration("duration", required=True)
        e.finish()
        if start is not None and cell_region is not None and share is not None and duration:
            cell_outages.append(CellOutage(start, cell_region, share, duration))

    integrity = []
    for e in s.tables("integrity"):
        start = e.instant("start", required=True)
        _in_run(e, "start", start, run)
        integrity_region = _region(e)
        share = e.optional_number("share", POSITIVE_SHARE, required=True)
        duration = e.optional_duration("duration", required=True)
        cells = e.number("cells", 1.0, POSITIVE_SHARE)
        cell = e.raw("cell")
        one_cell: str | None = None
        if cell is not None:
            if e.has("cells"):
                e.problem("cell", "give either cell or cells, not both")
            elif not isinstance(cell, str) or not re.fullmatch(r"[NCS]-\d{4}", cell):
                e.problem("cell", f"must be a cell id like 'N-0001', got {cell!r}")
            elif integrity_region is not None and region_of_cell(cell) is not integrity_region:
                e.problem("cell", f"{cell} is not a cell of {integrity_region.value}")
            else:
                one_cell = cell
        e.finish()
        if start is not None and integrity_region is not None and share is not None and duration:
            integrity.append(
                IntegrityEvent(start, integrity_region, share, duration, cells, one_cell)
            )

    installations, tenancy, early_smart = _field_changes(s)
    s.finish()
    return Load(
        on_demand,
        daily,
        settlement,
        top_ups,
        cos,
        alerts,
        tuple(tariffs),
        tuple(rollouts),
        tuple(storms),
        tuple(cell_outages),
        tuple(integrity),
        installations=installations,
        tenancy=tenancy,
        early_smart=early_smart,
    )


def _field_changes(s: _Section) -> tuple[InstallationLoad, TenancyLoad, EarlySmartLoad]:
    """``[load.installations]``, ``[load.tenancy]`` and ``[load.early_smart]``."""
    i = s.table("installations")
    d = InstallationLoad()
    installations = InstallationLoad(
        i.number("per_day", d.per_day, NON_NEGATIVE),
        i.duration("step", d.step_s, _Range(1.0, 3_600.0)),
        i.hour_profile("hour_profile", d.hour_profile),
    )
    i.finish()
    t = s.table("tenancy")
    tenancy = TenancyLoad(t.number("churn_per_day", TenancyLoad().churn_per_day, SHARE))
    t.finish()
    e = s.table("early_smart")
    early = EarlySmartLoad(
        e.number("contacts_per_day", EarlySmartLoad().contacts_per_day, NON_NEGATIVE)
    )
    e.finish()
    return installations, tenancy, early


def _region(e: _Section) -> Region | None:
    """The required ``region`` key of an event table."""
    name = e.raw("region", required=True)
    if name is None:
        return None
    if isinstance(name, str) and name in {r.value for r in Region}:
        return Region(name)
    e.problem("region", f"must be 'north', 'central' or 'south', got {name!r}")
    return None


def _anomaly(s: _Section) -> AnomalySettings | None:
    if not s.has("anomaly"):
        s.raw("anomaly")
        return None
    a = s.table("anomaly")
    counts = _Range(1.0)
    warning = a.integer("warning", DEFAULT_THRESHOLDS.warning, counts)
    quarantine = a.integer("quarantine", DEFAULT_THRESHOLDS.quarantine, counts)
    c_warning = a.integer("critical_warning", DEFAULT_CRITICAL_THRESHOLDS.warning, counts)
    c_quarantine = a.integer("critical_quarantine", DEFAULT_CRITICAL_THRESHOLDS.quarantine, counts)
    period = a.duration("period", DEFAULT_PERIOD_S)
    if warning > quarantine:
        a.problem("warning", f"must not be above quarantine ({quarantine}), got {warning}")
    if c_warning > c_quarantine:
        a.problem(
            "critical_warning",
            f"must not be above critical_quarantine ({c_quarantine}), got {c_warning}",
        )
    a.finish()
    return AnomalySettings(warning, quarantine, c_warning, c_quarantine, period)


def _hub(top: _Section) -> HubSettings:
    s = top.table("hub")
    d = HubSettings()
    settings = HubSettings(
        hold_s=s.duration("hold", d.hold_s),
        push_retry_s=s.duration("push_retry", d.push_retry_s),
        schedule_window_s=s.duration(
            "schedule_window", d.schedule_window_s, _Range(0.0, MAX_OFFSET_WINDOW_S)
        ),
        response_timeout_s=s.duration("response_timeout", d.response_timeout_s),
        capacity_per_s=s.number("capacity_per_s", d.capacity_per_s, POSITIVE),
        near_capacity_share=s.number("near_capacity_share", d.near_capacity_share, POSITIVE_SHARE),
        user_share=s.number("user_share", d.user_share, POSITIVE_SHARE),
        cell_bytes_per_s=s.optional_number("cell_bytes_per_s", POSITIVE),
        max_pending=s.integer("max_pending", d.max_pending, COUNT),
        max_per_comms_hub=s.integer("max_per_comms_hub", d.max_per_comms_hub, COUNT),
        busy_retry_s=s.duration("busy_retry", d.busy_retry_s),
        anomaly=_anomaly(s),
    )
    s.finish()
    return settings


def _sla(top: _Section) -> SlaThresholds:
    s = top.table("sla")
    d = SlaThresholds()
    services: dict[str, float] = {}
    st = s.table("services")
    for code in st.names():
        minimum = st.optional_number(code, SHARE)
        if not any(_covers(code, known) for known in CATALOGUE):
            st.problem(code, f"{code!r} is not a service reference (or group) of the catalogue")
        elif minimum is not None:
            services[code] = minimum
    busy = s.optional_number("max_busy_share", SHARE)
    t = s.table("targets")
    dt = SlaTargets()
    targets = SlaTargets(**{k.value: t.duration(k.value, dt.target_s(k)) for k in RequestClass})
    t.finish()
    sla = SlaThresholds(
        min_within_target=s.number("min_within_target", d.min_within_target, SHARE),
        services=services,
        max_outbox_depth=s.optional_integer("max_outbox_depth", NON_NEGATIVE),
        max_expiries=s.integer("max_expiries", d.max_expiries, NON_NEGATIVE),
        max_busy_share=busy,
        targets=targets,
    )
    s.finish()
    return sla


_ROLES = {r.value for r in Role}
_USERS = {u.user_id for u in fleet_users()}


def _windows(s: _Section, name: str) -> tuple[DailyWindow | Period, ...]:
    out: list[DailyWindow | Period] = []
    for w in s.tables(name):
        raw_start, raw_end = w.raw("start", required=True), w.raw("end", required=True)
        if raw_start is None or raw_end is None:
            w.finish()
            continue
        if _is_time(raw_start) and _is_time(raw_end):
            begin = w.time_of_day("start", time())
            end = w.time_of_day("end", time())
            if begin == end:
                w.problem("end", "must differ from start (a daily window of no length)")
            else:
                out.append(DailyWindow(begin, end))
        elif _is_time(raw_start) or _is_time(raw_end):
            w.problem(
                "end", "give start and end both as UK local times (daily) or both as instants"
            )
        else:
            b, e = w.instant("start"), w.instant("end")
            if b is not None and e is not None:
                if e <= b:
                    w.problem("end", f"must be after start ({b.isoformat()})")
                else:
                    out.append(Period(b, e))
        w.finish()
    return tuple(out)


def _is_time(value: object) -> bool:
    if isinstance(value, time) and not isinstance(value, datetime):
        return True
    return (
        isinstance(value, str)
        and re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()) is not None
    )


def _recipients(top: _Section) -> tuple[Recipient, ...]:
    out = []
    seen: set[tuple[RecipientScope, str]] = set()
    for r in top.tables("recipients"):
        user, role = r.raw("user"), r.raw("role")
        scope: RecipientScope | None = None
        name = ""
        if (user is None) == (role is None):
            r.problem("user", "give either user (a user id) or role, exactly one")
        elif user is not None:
            if not isinstance(user, str) or user not in _USERS:
                known = ", ".join(sorted(_USERS))
                r.problem("user", f"{user!r} is not a user of the fleet (one of: {known})")
            else:
                scope, name = RecipientScope.USER, user
        elif not isinstance(role, str) or role not in _ROLES:
            r.problem("role", f"must be one of {', '.join(sorted(_ROLES))}, got {role!r}")
        else:
            scope, name = RecipientScope.ROLE, role
        if scope is not None and (scope, name) in seen:
            r.problem(scope.value, f"{name} is named by an earlier [[recipients]] entry")
        offline = _windows(r, "offline")
        online = _windows(r, "online")
        ack = r.duration("ack_delay", 0.0, NON_NEGATIVE)
        in_flight = r.integer("max_in_flight", DEFAULT_MAX_IN_FLIGHT, COUNT)
        push = r.optional_number("push_rate", POSITIVE)
        reconnect = r.duration("reconnect_after", 0.0, NON_NEGATIVE)
        r.finish()
        if scope is not None:
            seen.add((scope, name))
            out.append(Recipient(scope, name, offline, online, ack, in_flight, push, reconnect))
    return tuple(out)


SECTIONS = ("scenario", "fleet", "wan", "load", "hub", "sla", "recipients")
"""The top-level tables of a scenario file."""


def load_scenario(text: str, file: str) -> Scenario:
    """Read a scenario from the text of a TOML file; ``file`` names it in errors.

    Raises ``ScenarioError`` listing every problem (syntax, unknown keys, wrong types,
    out-of-range values, missing required keys, inconsistent values).
    """
    try:
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, "", f"not valid TOML: {exc}") from None
    problems: list[ScenarioProblem] = []
    top = _Section(problems, "", data)
    run = _run(top)
    fleet = _fleet(top)
    wan = _wan(top, (fleet.mix if fleet else FleetMix()).sites_per_cell)
    load = _load(top, run)
    hub = _hub(top)
    sla = _sla(top)
    recipients = _recipients(top)
    for name in top.names():
        if name not in SECTIONS:
            top.raw(name)
            top.problem(name, f"unknown section (expected one of: {', '.join(SECTIONS)})")
    if problems or run is None or fleet is None:
        first = problems[0] if problems else ScenarioProblem("", "incomplete scenario")
        raise ScenarioError(file, first.key, first.reason, tuple(problems))
    return Scenario(file, run, fleet, wan, load, hub, sla, recipients)
