"""A scenario's steady traffic as bulk flows: message classes and each region's WAN links.

Decides: the per-meter daily rate, hour-of-day profile, bytes on the WAN and target response
time of each flow class a scenario implies (on-demand requests, scheduled daily and settlement
reads, top-ups, change-of-supplier requests, device and hub alerts, tariff changes, firmware
images, outage alerts), and how the fleet's meters and cells split over the three regions.
Must never: simulate anything itself (``meters_sim.bulk`` does).
"""

from __future__ import annotations

from meters_sim.bulk import FlowClass, RegionLinks
from meters_sim.scenario import EVENING_PEAK, FLAT, HourProfile, Region, Scenario, ScheduledReads

REGION_SHARE = {Region.NORTH: 5 / 14, Region.CENTRAL: 4 / 14, Region.SOUTH: 5 / 14}
"""Share of meters per region: the 14 distribution areas, 5 North, 4 Central, 5 South."""
REQUEST_BYTES = 400
READ_LOG_BYTES = 2_048
PROFILE_BYTES = 4_096
ALERT_BYTES = 200
TARGET_S = 30.0


def _window(reads: ScheduledReads) -> HourProfile:
    first = reads.window_start.hour
    hours = max(1, round(reads.window_s / 3600))
    return HourProfile(tuple(1.0 if (h - first) % 24 < hours else 0.0 for h in range(24)))


def flow_classes(scenario: Scenario) -> list[FlowClass]:
    """The steady classes, plus one-off diarised events, for one simulated day."""
    load = scenario.load
    rates = scenario.message_rates()
    classes = [
        FlowClass(
            "on demand",
            rates.on_demand,
            load.on_demand.hour_profile.weights,
            REQUEST_BYTES,
            TARGET_S,
        ),
        FlowClass(
            f"daily reads {load.daily_reads.service}",
            rates.daily_reads,
            _window(load.daily_reads).weights,
            READ_LOG_BYTES,
            TARGET_S,
        ),
        FlowClass(
            f"settlement reads {load.settlement.service}",
            rates.settlement_reads,
            _window(load.settlement).weights,
            PROFILE_BYTES,
            TARGET_S,
        ),
        FlowClass(
            "top-ups 2.2", rates.top_ups, load.top_ups.hour_profile.weights, REQUEST_BYTES, TARGET_S
        ),
        FlowClass(
            "change of supplier", rates.change_of_supplier, FLAT.weights, REQUEST_BYTES, TARGET_S
        ),
        FlowClass(
            "device alerts",
            rates.device_alerts,
            load.alerts.hour_profile.weights,
            ALERT_BYTES,
            TARGET_S,
        ),
        FlowClass("hub alerts", rates.hub_alerts, FLAT.weights, ALERT_BYTES, TARGET_S),
    ]
    for change in load.tariff_changes:
        classes.append(
            FlowClass(
                f"tariff change {change.service}",
                change.share,
                EVENING_PEAK.weights,
                REQUEST_BYTES,
                TARGET_S,
                bulk=True,
            )
        )
    for rollout in load.firmware_rollouts:
        hours = max(1, int(rollout.over_s // 3600))
        first = rollout.at.hour
        profile = tuple(1.0 if (h - first) % 24 < min(24, hours) else 0.0 for h in range(24))
        share = rollout.share * min(1.0, 86_400.0 / rollout.over_s)
        classes.append(
            FlowClass(
                f"firmware {rollout.service} {rollout.device_type.value}",
                share,
                profile,
                rollout.image_bytes,
                24 * 3600.0,
                bulk=True,
            )
        )
    return [c for c in classes if c.per_meter_per_day > 0]


def outage_classes(scenario: Scenario, region: Region) -> list[FlowClass]:
    """AD1 and restoration alerts of the scenario's outage storms in a region."""
    out = []
    for storm in scenario.load.outages:
        if storm.region is not region:
            continue
        hour = storm.start.hour
        spike = tuple(1.0 if h == hour else 0.0 for h in range(24))
        back = tuple(
            1.0 if h == (hour + max(1, int(storm.duration_s // 3600))) % 24 else 0.0
            for h in range(24)
        )
        out.append(FlowClass("outage AD1", storm.share, spike, ALERT_BYTES, TARGET_S))
        out.append(FlowClass("supply restored 8F36", storm.share, back, ALERT_BYTES, TARGET_S))
    return out


def region_links(scenario: Scenario) -> list[RegionLinks]:
    """Each region's meters and cells for the fleet size."""
    meters = scenario.fleet.meters
    sites = scenario.fleet.sites
    out = []
    for region, share in REGION_SHARE.items():
        w = scenario.wan[region]
        out.append(
            RegionLinks(
                region.value.capitalize(),
                round(meters * share),
                w.cell_count(round(sites * share)),
                w.cell_capacity_bytes_per_s,
                w.profile(),
                w.coverage,
            )
        )
    return out
