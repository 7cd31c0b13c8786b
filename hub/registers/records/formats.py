"""Fleet file formats: the files of a fleet directory, their columns, and the record error.

Decides: what each file of a fleet directory is called, which columns it has in which order,
the closed lists some columns draw from (WAN regions, gas zones), and how a bad record is
reported (``RecordError(file, line, reason)``). The formats are written down in
``docs/fleet-files.md``.
Must never: parse or write a line (the record modules do) or open a file.
"""

from __future__ import annotations

from enum import StrEnum

# The files of a fleet directory (docs/fleet-files.md).
USERS_FILE = "users.csv"
ELECTRICITY_REGISTER_FILE = "electricity_register.csv"
GAS_REGISTER_FILE = "gas_register.csv"
REGISTRATIONS_FILE = "registrations.csv"
APPOINTMENTS_FILE = "appointments.csv"
CONSENTS_FILE = "consents.csv"
PRODUCTS_FILE = "approved_products.csv"
SITES_FILE = "sites.csv"
DEVICES_FILE = "devices.csv"
CANDIDATES_FILE = "early_smart_candidates.csv"
CANDIDATE_SITES_FILE = "early_smart_sites.csv"
MANIFEST_FILE = "fleet.json"

USERS_HEADER = ("user_id", "party_id", "name", "roles", "status", "public_key")
"""Columns of ``users.csv``."""
ELECTRICITY_REGISTER_HEADER = (
    "mpan",
    "area",
    "network_operator",
    "data_collector",
    "smart",
    "settlement",
    "domestic",
    "export",
    "tenancy_changes",
)
"""Columns of ``electricity_register.csv`` (ECOES-like)."""
GAS_REGISTER_HEADER = (
    "mprn",
    "ldz",
    "network_operator",
    "data_collector",
    "smart",
    "domestic",
    "tenancy_changes",
)
"""Columns of ``gas_register.csv``."""
REGISTRATIONS_HEADER = ("mpxn", "supplier", "effective_from", "effective_to")
"""Columns of ``registrations.csv``."""
APPOINTMENTS_HEADER = ("agent", "supplier", "mpxn", "effective_from", "effective_to")
"""Columns of ``appointments.csv``."""
CONSENTS_HEADER = ("esco", "mpxn", "granted", "expires")
"""Columns of ``consents.csv``."""
PRODUCTS_HEADER = ("manufacturer", "model", "device_type", "head_end", "early_smart")
"""Columns of ``approved_products.csv``."""
SITES_HEADER = ("site_id", "comms_hub", "lead_supplier", "region", "cell")
"""Columns of ``sites.csv`` and ``early_smart_sites.csv``."""
DEVICES_HEADER = (
    "device_id",
    "device_type",
    "site_id",
    "manufacturer",
    "model",
    "firmware",
    "head_end",
    "status",
    "mpxn",
    "early_smart",
    "payment_mode",
)
"""Columns of ``devices.csv`` and ``early_smart_candidates.csv``."""

WAN_REGIONS = ("North", "Central", "South")
"""The WAN regions a site's comms hub may be in."""
GAS_LDZS = ("SC", "NO", "NW", "NE", "EM", "WM", "WN", "WS", "EA", "NT", "SE", "SO", "SW")
"""The 13 GB gas local distribution zones."""
LIST_SEPARATOR = ";"
"""Joins the items of a list inside one CSV field."""


class RecordError(ValueError):
    """A bad record in a fleet file: which file, which 1-based line, and why."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(file, line, reason)  # picklable: args rebuild the error
        self.file = file
        """Label of the file (usually its path or name)."""
        self.line = line
        """1-based line number; the header is line 1."""
        self.reason = reason
        """What is wrong, in words a person can act on."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class PaymentMode(StrEnum):
    """How a meter is paid for; seeds the simulated meter (the hub inventory ignores it)."""

    CREDIT = "credit"
    PREPAYMENT = "prepayment"
