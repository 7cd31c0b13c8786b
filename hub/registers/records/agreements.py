"""Fleet file records of agreements: agent appointments and ESCo consents, both ways.

Decides: whether a line of ``appointments.csv`` or ``consents.csv`` is well formed (dates in
order, a known meter point, an appointing supplier that was registered for it) and the line
each is written as.
Must never: decide whether an agent or ESCo may act on a given day (access control does) or
open a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from hub.registers.records._common import (
    csv_line,
    date_parser,
    day_text,
    require,
    table,
)
from hub.registers.records.formats import (
    APPOINTMENTS_FILE,
    APPOINTMENTS_HEADER,
    CONSENTS_FILE,
    CONSENTS_HEADER,
)
from hub.registers.records.meter_points import known_meter_point
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
)


def parse_appointments(
    lines: Iterable[str],
    file: str = APPOINTMENTS_FILE,
    *,
    meter_points: Mapping[str, MeterPoint] | None = None,
) -> list[AgentAppointment]:
    """Parse ``appointments.csv``. With ``meter_points``, each meter point must be known and the
    appointing supplier must hold (or have held) a registration of it."""
    parse_date = date_parser()
    out: list[AgentAppointment] = []
    with table(lines, file, APPOINTMENTS_HEADER) as (rows, _):
        for agent, supplier, mpxn, start_text, end_text in rows:
            require(agent=agent, supplier=supplier)
            start = parse_date(start_text, "effective_from")
            end = parse_date(end_text, "effective_to") if end_text else None
            if end is not None and end <= start:
                raise ValueError(
                    f"effective_to {end_text} is not after effective_from {start_text}"
                )
            mp = known_meter_point(mpxn, meter_points)
            if mp is not None and all(r.supplier != supplier for r in mp.registrations):
                raise ValueError(f"supplier {supplier} was never registered for {mpxn}")
            out.append(AgentAppointment(agent, supplier, mpxn, start, end))
    return out


def parse_consents(
    lines: Iterable[str],
    file: str = CONSENTS_FILE,
    *,
    meter_points: Mapping[str, MeterPoint] | None = None,
) -> list[Consent]:
    """Parse ``consents.csv``. With ``meter_points``, each meter point must be known."""
    parse_date = date_parser()
    out: list[Consent] = []
    with table(lines, file, CONSENTS_HEADER) as (rows, _):
        for esco, mpxn, granted_text, expires_text in rows:
            require(esco=esco)
            granted = parse_date(granted_text, "granted")
            expires = parse_date(expires_text, "expires") if expires_text else None
            if expires is not None and expires <= granted:
                raise ValueError(f"expires {expires_text} is not after granted {granted_text}")
            known_meter_point(mpxn, meter_points)
            out.append(Consent(esco, mpxn, granted, expires))
    return out


def format_appointments(appointments: Iterable[AgentAppointment]) -> Iterator[str]:
    """Lines of ``appointments.csv``."""
    yield csv_line(APPOINTMENTS_HEADER)
    for a in appointments:
        yield csv_line(
            (a.agent, a.supplier, a.mpxn, day_text(a.effective_from), day_text(a.effective_to))
        )


def format_consents(consents: Iterable[Consent]) -> Iterator[str]:
    """Lines of ``consents.csv``."""
    yield csv_line(CONSENTS_HEADER)
    for c in consents:
        yield csv_line((c.esco, c.mpxn, day_text(c.granted), day_text(c.expires)))
