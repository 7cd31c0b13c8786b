"""Fleet file records: pure parsers (and writers) for the CSV files of a fleet directory.

Re-exports only. The file names, columns and ``RecordError`` live in ``formats``; each kind of
record has its own module: ``users``, ``meter_points`` (the electricity and gas registers and
the supplier registrations), ``agreements`` (agent appointments and consents) and ``devices``
(approved products, sites and devices). A bad record is refused with ``RecordError(file, line,
reason)``, the line being 1-based with the header on line 1. The formats are written down in
``docs/fleet-files.md``. No module here opens a file or reads the clock.
"""

from hub.registers.records._common import (
    csv_line,
)
from hub.registers.records.agreements import (
    format_appointments,
    format_consents,
    parse_appointments,
    parse_consents,
)
from hub.registers.records.devices import (
    DeviceTable,
    format_devices,
    format_products,
    format_sites,
    parse_devices,
    parse_products,
    parse_sites,
)
from hub.registers.records.formats import (
    APPOINTMENTS_FILE,
    APPOINTMENTS_HEADER,
    CANDIDATE_SITES_FILE,
    CANDIDATES_FILE,
    CONSENTS_FILE,
    CONSENTS_HEADER,
    DEVICES_FILE,
    DEVICES_HEADER,
    ELECTRICITY_REGISTER_FILE,
    ELECTRICITY_REGISTER_HEADER,
    GAS_LDZS,
    GAS_REGISTER_FILE,
    GAS_REGISTER_HEADER,
    LIST_SEPARATOR,
    MANIFEST_FILE,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    REGISTRATIONS_FILE,
    REGISTRATIONS_HEADER,
    SITES_FILE,
    SITES_HEADER,
    USERS_FILE,
    USERS_HEADER,
    WAN_REGIONS,
    PaymentMode,
    RecordError,
)
from hub.registers.records.meter_points import (
    RegistrationTable,
    check_registrations_joined,
    format_electricity_register,
    format_gas_register,
    format_registrations,
    known_meter_point,
    parse_electricity_register,
    parse_gas_register,
    parse_registrations,
)
from hub.registers.records.users import (
    format_users,
    parse_users,
)

__all__ = [
    "APPOINTMENTS_FILE",
    "APPOINTMENTS_HEADER",
    "CANDIDATES_FILE",
    "CANDIDATE_SITES_FILE",
    "CONSENTS_FILE",
    "CONSENTS_HEADER",
    "DEVICES_FILE",
    "DEVICES_HEADER",
    "ELECTRICITY_REGISTER_FILE",
    "ELECTRICITY_REGISTER_HEADER",
    "GAS_LDZS",
    "GAS_REGISTER_FILE",
    "GAS_REGISTER_HEADER",
    "LIST_SEPARATOR",
    "MANIFEST_FILE",
    "PRODUCTS_FILE",
    "PRODUCTS_HEADER",
    "REGISTRATIONS_FILE",
    "REGISTRATIONS_HEADER",
    "SITES_FILE",
    "SITES_HEADER",
    "USERS_FILE",
    "USERS_HEADER",
    "WAN_REGIONS",
    "DeviceTable",
    "PaymentMode",
    "RecordError",
    "RegistrationTable",
    "check_registrations_joined",
    "csv_line",
    "format_appointments",
    "format_consents",
    "format_devices",
    "format_electricity_register",
    "format_gas_register",
    "format_products",
    "format_registrations",
    "format_sites",
    "format_users",
    "known_meter_point",
    "parse_appointments",
    "parse_consents",
    "parse_devices",
    "parse_electricity_register",
    "parse_gas_register",
    "parse_products",
    "parse_registrations",
    "parse_sites",
    "parse_users",
]
