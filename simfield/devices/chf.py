"""The simulated comms hub function (CHF): the site's WAN end, HAN coordinator and device log.

Decides: the HAN device log (8.9, 8.11, 8.12.1; alert 8F12), the sub-GHz radio configuration,
channel scans and channel log (6.28-6.32; alerts 8F2A, 8F26), and the power outage alert: the
comms hub raises AD1 once it has been without power for more than 3 minutes.
Must never: read the clock; channel noise comes from the device's seeded draws.
"""

from __future__ import annotations

from typing import ClassVar

from hub.reference.roles import DeviceType
from hub.reference.standard import DeviceAlert, Instant, Value

from .base import NO_ANCHORS, Body, Ctx, Handler, TrustAnchors, p_bool, p_int
from .han import LOG_KEEPER_HANDLERS, LogKeeper

OUTAGE_ALERT_AFTER_S = 180.0
"""A comms hub without power for longer than this raises AD1."""
SUB_GHZ_CHANNELS = 27
MAX_CHANNEL_LOG = 10
NOISE_FLOOR_DBM = -105.0
NOISE_SPREAD_DB = 30.0
CHANNEL_HYSTERESIS_DB = 3.0


class CHF(LogKeeper):
    """A comms hub function."""

    __slots__ = ("_ad1_sent", "_agility", "_channel", "_channel_log", "_outage_start", "_preferred")

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.CHF
    HANDLERS: ClassVar[dict[str, Handler]]
    LOG_CHANGED_ALERT: ClassVar[str] = "8F12"

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        supplier_key_id: str,
        network_key_id: str,
        channel: int,
        device_log: tuple[str, ...] = (),
        anchors: TrustAnchors = NO_ANCHORS,
    ) -> None:
        super().__init__(
            device_id,
            key,
            supplier_key_id=supplier_key_id,
            network_key_id=network_key_id,
            device_log=device_log,
            anchors=anchors,
        )
        self._channel = channel
        self._preferred: int | None = None
        self._agility = True
        self._channel_log: list[tuple[float, int, str]] | None = None
        self._outage_start: float | None = None
        self._ad1_sent = False

    # ------------------------------------------------------------------ power

    @property
    def powered(self) -> bool:
        """Mains power is present."""
        return self._outage_start is None

    @property
    def outage_start(self) -> Instant | None:
        """When the current outage began, or None."""
        return self._outage_start

    def power_lost(self, at: Instant) -> None:
        """Mains power fails."""
        if self._outage_start is None:
            self._outage_start = at
            self._ad1_sent = False

    def check_outage(self, now: Instant, alerts: list[DeviceAlert]) -> None:
        """Raise AD1 (as a last gasp, timed 3 minutes into the outage) once it has lasted
        longer than that."""
        start = self._outage_start
        if start is None or self._ad1_sent or now - start <= OUTAGE_ALERT_AFTER_S:
            return
        self._ad1_sent = True
        self.alert(alerts, "AD1", start + OUTAGE_ALERT_AFTER_S, {"outage_start": start})

    def power_back(self, at: Instant, alerts: list[DeviceAlert]) -> float:
        """Mains power returns; AD1 first if it was due. Returns the outage length, s."""
        start = self._outage_start
        if start is None:
            return 0.0
        self.check_outage(at, alerts)
        self._outage_start = None
        return at - start

    # ------------------------------------------------------------------ radio

    def _change_channel(
        self, channel: int, at: Instant, reason: str, alerts: list[DeviceAlert]
    ) -> None:
        previous = self._channel
        self._channel = channel
        entries = self._channel_log if self._channel_log is not None else []
        entries.append((at, channel, reason))
        if len(entries) > MAX_CHANNEL_LOG:
            del entries[0]
        self._channel_log = entries
        self.alert(alerts, "8F26", at, {"channel": channel, "previous_channel": previous})

    @property
    def channel(self) -> int:
        """The sub-GHz channel in use."""
        return self._channel

    def h_set_sub_ghz(self, ctx: Ctx) -> Body:
        """6.28 Set CHF Sub GHz Configuration."""
        self._agility = p_bool(ctx.params, "frequency_agility", self._agility)
        if "preferred_channel" in ctx.params:
            self._preferred = p_int(ctx.params, "preferred_channel")
            if self._preferred != self._channel:
                self._change_channel(self._preferred, ctx.now, "configuration", ctx.alerts)
        self.alert(ctx.alerts, "8F2A", ctx.now)
        return self.h_read_sub_ghz(ctx)

    def h_scan(self, ctx: Ctx) -> Body:
        """6.29 Request CHF Sub GHz Channel Scan: measure noise, move to a quieter channel."""
        noise = [
            round(NOISE_FLOOR_DBM + NOISE_SPREAD_DB * self.draw(3), 1)
            for _ in range(SUB_GHZ_CHANNELS)
        ]
        best = min(range(SUB_GHZ_CHANNELS), key=lambda ch: (noise[ch], ch))
        changed = (
            self._agility
            and best != self._channel
            and noise[best] + CHANNEL_HYSTERESIS_DB < noise[self._channel]
        )
        if changed:
            self._change_channel(best, ctx.now, "scan", ctx.alerts)
        levels: list[Value] = [*noise]
        return {"noise_dbm": levels, "channel": self._channel, "changed": changed}

    def h_read_sub_ghz(self, ctx: Ctx) -> Body:
        """6.30 Read CHF Sub GHz Configuration."""
        return {
            "preferred_channel": self._preferred,
            "frequency_agility": self._agility,
            "channel": self._channel,
        }

    def h_read_channel(self, ctx: Ctx) -> Body:
        """6.31 Read CHF Sub GHz Channel."""
        return {"channel": self._channel}

    def h_channel_log(self, ctx: Ctx) -> Body:
        """6.32 Read CHF Sub GHz Channel Log."""
        rows: list[Value] = [
            {"at": at, "channel": channel, "reason": reason}
            for at, channel, reason in self._channel_log or ()
        ]
        return {"entries": rows}


CHF.HANDLERS = {
    **LOG_KEEPER_HANDLERS,
    "6.28": CHF.h_set_sub_ghz,
    "6.29": CHF.h_scan,
    "6.30": CHF.h_read_sub_ghz,
    "6.31": CHF.h_read_channel,
    "6.32": CHF.h_channel_log,
    "8.12.1": CHF.h_restore_device_log,
}
