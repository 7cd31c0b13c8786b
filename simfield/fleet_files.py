"""Writes a generated fleet (``simfield.fleet.FleetArrays``) as a fleet directory, and register
churn for a fleet as change files for its inbox.

Decides: nothing about the fleet; only how its columns become the CSV files of
``docs/fleet-files.md``, and which meter points a requested churn (changes of supplier and of
tenancy, new connections, half-hourly flag changes) falls on, with which sequence numbers. Big files are rendered with numpy (every field is a fixed-width
block of bytes padded with NUL, rows are laid side by side and the NULs squeezed out), which
is an order of magnitude faster than a csv writer per row.
Must never: change the arrays, read the clock or write anything that differs between two runs
on the same arrays (output is byte-identical).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hub.reference.mpxn import make_mpan
from hub.reference.parties import User
from hub.reference.roles import Fuel, Role
from hub.registers import records
from hub.registers.change_files import change_file_lines, register_of
from hub.registers.changes import (
    ChangeId,
    ElectricitySupplierChange,
    GasSupplierChange,
    NewMeterPoint,
    Register,
    RegisterChange,
    SettlementChange,
    TenancyChange,
)
from hub.registers.registration import (
    MeterPoint,
    RegistrationData,
    Settlement,
    SupplierRegistration,
)
from simfield import fleet as fl
from simfield.fleet import NO_DATE, FleetArrays, IntArray

Block = npt.NDArray[np.uint8]
"""One field for many rows: shape (rows, width), NUL-padded bytes."""
CHUNK_ROWS = 1 << 18
"""Rows rendered at a time (bounds memory for national fleets)."""
FORMAT = "dcc-hub fleet 1"
"""Format name and version recorded in ``fleet.json``."""
_UNSAFE = frozenset(b',"\r\n\x00')


def _table(values: Sequence[str]) -> Block:
    """A lookup table of NUL-padded encoded values, one row per value; no value may need
    CSV quoting."""
    encoded = [v.encode() for v in values]
    for e in encoded:
        if _UNSAFE.intersection(e):
            raise ValueError(f"{e!r} would need CSV quoting")
    return _packed(encoded)


def _packed(encoded: Sequence[bytes]) -> Block:
    width = max([1, *(len(e) for e in encoded)])
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    return table


def _joined_table(rows: Sequence[Sequence[str]]) -> Block:
    """A lookup table of several fields pre-joined with commas (each field checked)."""
    for row in rows:
        _table(row)
    return _packed([",".join(r).encode() for r in rows])


def _digits(values: IntArray, width: int) -> Block:
    """Zero-padded decimal digits."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64)
    for k in range(width - 1, -1, -1):
        out[:, k] = rest % 10 + 48
        rest = rest // 10
    return out


_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def _hex16(ids: npt.NDArray[np.uint64]) -> Block:
    """16 upper-case hex digits per 64-bit id."""
    raw = ids.astype(">u8").view(np.uint8).reshape(len(ids), 8)
    out = np.empty((len(ids), 16), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _const(text: str, rows: int) -> Block:
    return np.tile(_table([text]), (rows, 1))


def _flags(values: npt.NDArray[np.bool_]) -> Block:
    return _table(["N", "Y"])[values.astype(np.int64)]


def _hstack(*blocks: Block) -> Block:
    """Several blocks as one field (no separator between them)."""
    return np.ascontiguousarray(np.hstack(blocks))


class _Dates:
    """ISO dates for day offsets from ``as_of``; ``NO_DATE`` renders as an empty field."""

    def __init__(self, fleet: FleetArrays) -> None:
        columns = (
            fleet.reg_from,
            fleet.reg_to,
            fleet.ap_from,
            fleet.ap_to,
            fleet.co_granted,
            fleet.co_expires,
            fleet.site_tenancy.ravel(),
        )
        present = [c[c != NO_DATE] for c in columns]
        values = np.concatenate([*present, np.zeros(1, dtype=np.int64)])
        self.low = int(values.min())
        high = int(values.max())
        days = [fleet.as_of + timedelta(days=d) for d in range(self.low, high + 1)]
        self.table = np.vstack([_table([d.isoformat() for d in days]), np.zeros((1, 10), np.uint8)])

    def __call__(self, offsets: IntArray) -> Block:
        index = np.where(offsets == NO_DATE, len(self.table) - 1, offsets - self.low)
        return self.table[index]


def _write(path: Path, data: Iterable[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        for part in data:
            fh.write(part)
    os.replace(tmp, path)


def _render(rows: IntArray, make: Callable[[IntArray], list[Block]]) -> Iterable[bytes]:
    """CSV bytes for ``rows``, chunk by chunk: fields side by side, then NULs squeezed out."""
    for lo in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[lo : lo + CHUNK_ROWS]
        fields = make(chunk)
        width = sum(f.shape[1] for f in fields) + len(fields)
        mat = np.empty((len(chunk), width), dtype=np.uint8)
        at = 0
        for i, f in enumerate(fields):
            mat[:, at : at + f.shape[1]] = f
            at += f.shape[1]
            mat[:, at] = 44 if i < len(fields) - 1 else 10  # ',' or '\n'
            at += 1
        flat = mat.ravel()
        yield flat[flat != 0].tobytes()


def _write_table(
    path: Path, header: Sequence[str], rows: IntArray, make: Callable[[IntArray], list[Block]]
) -> int:
    head = records.csv_line(header).encode()
    _write(path, (head, *_render(rows, make)))
    return len(rows)


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    text = "".join(lines)
    _write(path, (text.encode(),))
    return text.count("\n") - 1


def write_fleet(fleet: FleetArrays, out_dir: str | Path) -> dict[str, int]:
    """Write every file of a fleet directory; returns the number of records per file.

    The same arrays always give the same bytes. Each file is written under a temporary name
    and renamed; ``fleet.json`` is written last, so its presence marks a complete fleet.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f = fleet
    dates = _Dates(f)
    counts: dict[str, int] = {}
    counts[records.USERS_FILE] = _write_lines(
        out / records.USERS_FILE, records.format_users(fl.fleet_users())
    )
    counts[records.PRODUCTS_FILE] = _write_lines(
        out / records.PRODUCTS_FILE, records.format_products(fl.approved_products())
    )

    # shared lookup tables
    yes = _table(["Y"])
    suppliers = _table([s.party_id for s in fl.SUPPLIERS])
    collectors = _table(fl.COLLECTORS)
    area_ids = _table([a.distributor_id for a in fl.AREAS])
    area_operators = _table([a.operator for a in fl.AREAS])
    ldzs = _table(fl.LDZS)
    transporters = _table([fl.LDZ_TRANSPORTER[z] for z in fl.LDZS])
    settlement = _table(["NHH", "HH"])
    is_gas_mp = f.mp_kind == fl.GAS
    tenancy_sep = _table(["", ";"])

    def mpxn(mps: IntArray) -> Block:
        out13 = np.zeros((len(mps), 13), dtype=np.uint8)
        gas = is_gas_mp[mps]
        out13[~gas] = _digits(f.mp_number[mps[~gas]], 13)
        out13[gas, :10] = _digits(f.mp_number[mps[gas]], 10)
        return out13

    def tenancy(sites: IntArray) -> Block:
        t = f.site_tenancy[sites]
        both = t[:, 1] != NO_DATE
        return _hstack(dates(t[:, 0]), tenancy_sep[both.astype(np.int64)], dates(t[:, 1]))

    def electricity(mps: IntArray) -> list[Block]:
        s = f.mp_site[mps]
        n = len(mps)
        return [
            _digits(f.mp_number[mps], 13),
            area_ids[f.site_area[s]],
            area_operators[f.site_area[s]],
            collectors[f.site_collector[s]],
            np.broadcast_to(yes, (n, 1)),
            settlement[f.mp_half_hourly[mps].astype(np.int64)],
            _flags(f.site_domestic[s]),
            _flags(f.mp_kind[mps] == fl.EXPORT),
            tenancy(s),
        ]

    def gas(mps: IntArray) -> list[Block]:
        s = f.mp_site[mps]
        return [
            _digits(f.mp_number[mps], 10),
            ldzs[f.site_ldz[s]],
            transporters[f.site_ldz[s]],
            collectors[f.site_collector[s]],
            np.broadcast_to(yes, (len(mps), 1)),
            _flags(f.site_domestic[s]),
            tenancy(s),
        ]

    counts[records.ELECTRICITY_REGISTER_FILE] = _write_table(
        out / records.ELECTRICITY_REGISTER_FILE,
        records.ELECTRICITY_REGISTER_HEADER,
        np.nonzero(~is_gas_mp)[0],
        electricity,
    )
    counts[records.GAS_REGISTER_FILE] = _write_table(
        out / records.GAS_REGISTER_FILE,
        records.GAS_REGISTER_HEADER,
        np.nonzero(is_gas_mp)[0],
        gas,
    )
    counts[records.REGISTRATIONS_FILE] = _write_table(
        out / records.REGISTRATIONS_FILE,
        records.REGISTRATIONS_HEADER,
        np.arange(len(f.reg_mp)),
        lambda r: [
            mpxn(f.reg_mp[r]),
            suppliers[f.reg_supplier[r]],
            dates(f.reg_from[r]),
            dates(f.reg_to[r]),
        ],
    )
    agents = _table([p for p, _ in fl.AGENTS])
    counts[records.APPOINTMENTS_FILE] = _write_table(
        out / records.APPOINTMENTS_FILE,
        records.APPOINTMENTS_HEADER,
        np.arange(len(f.ap_mp)),
        lambda r: [
            agents[f.ap_agent[r]],
            suppliers[f.ap_supplier[r]],
            mpxn(f.ap_mp[r]),
            dates(f.ap_from[r]),
            dates(f.ap_to[r]),
        ],
    )
    escos = _table([p for p, _, _ in fl.ESCOS])
    counts[records.CONSENTS_FILE] = _write_table(
        out / records.CONSENTS_FILE,
        records.CONSENTS_HEADER,
        np.arange(len(f.co_mp)),
        lambda r: [
            escos[f.co_esco[r]],
            mpxn(f.co_mp[r]),
            dates(f.co_granted[r]),
            dates(f.co_expires[r]),
        ],
    )

    total_sites = f.sites + f.candidates
    id_width = max(8, len(str(total_sites)))
    regions = _table(fl.REGIONS)
    letters = _table([f"{r[0]}-" for r in fl.REGIONS])
    cell_width = max(4, len(str(int(f.site_cell.max()))))

    def site_id(sites: IntArray) -> Block:
        return _hstack(_const("S", len(sites)), _digits(sites + 1, id_width))

    def site_rows(sites: IntArray) -> list[Block]:
        return [
            site_id(sites),
            _hex16(f.site_comms_hub[sites]),
            suppliers[f.site_lead[sites]],
            regions[f.site_region[sites]],
            _hstack(letters[f.site_region[sites]], _digits(f.site_cell[sites], cell_width)),
        ]

    counts[records.SITES_FILE] = _write_table(
        out / records.SITES_FILE, records.SITES_HEADER, np.arange(f.sites), site_rows
    )
    counts[records.CANDIDATE_SITES_FILE] = _write_table(
        out / records.CANDIDATE_SITES_FILE,
        records.SITES_HEADER,
        np.arange(f.sites, total_sites),
        site_rows,
    )

    types = _table([t.value for t in fl.DEVICE_TYPES])
    statuses = _table([s.value for s in fl.STATUSES])
    payments = _table(fl.PAYMENT_MODES)
    combos: list[tuple[str, str, str, str]] = []
    combo_start = np.zeros(len(fl.MODELS), dtype=np.int64)
    for i, m in enumerate(fl.MODELS):
        combo_start[i] = len(combos)
        maker = fl.MANUFACTURERS[m.manufacturer]
        combos += [(maker.name, m.model, fw, maker.head_end) for fw in m.firmware]
    model_fields = _joined_table(combos)

    def device_rows(d: IntArray) -> list[Block]:
        mp = f.device_mp[d]
        has_mp = mp >= 0
        mp_block = np.zeros((len(d), 13), dtype=np.uint8)
        mp_block[has_mp] = mpxn(mp[has_mp])
        return [
            _hex16(f.device_id[d]),
            types[f.device_type[d]],
            site_id(f.device_site[d]),
            model_fields[combo_start[f.device_model[d]] + f.device_firmware[d]],
            statuses[f.device_status[d]],
            mp_block,
            _flags(f.site_early[f.device_site[d]]),
            payments[f.device_payment[d]],
        ]

    in_hub = int(np.searchsorted(f.device_site, f.sites))  # devices are ordered by site
    counts[records.DEVICES_FILE] = _write_table(
        out / records.DEVICES_FILE, records.DEVICES_HEADER, np.arange(in_hub), device_rows
    )
    counts[records.CANDIDATES_FILE] = _write_table(
        out / records.CANDIDATES_FILE,
        records.DEVICES_HEADER,
        np.arange(in_hub, len(f.device_id)),
        device_rows,
    )

    manifest = {
        "format": FORMAT,
        "seed": f.seed,
        "as_of": f.as_of.isoformat(),
        "sites": f.sites,
        "candidate_sites": f.candidates,
        "counts": counts,
        "shares": fl.fleet_summary(f),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _write(out / records.MANIFEST_FILE, (text.encode(),))
    return counts


# ---- register churn: change files for the inbox of a fleet ---------------------------------


@dataclass(frozen=True, slots=True)
class Churn:
    """How much register churn to write, all effective on one day."""

    effective: date
    """The UK day every change takes effect."""
    supplier_changes: int = 0
    """Changes of supplier (electricity import and gas meter points with a supplier)."""
    tenancy_changes: int = 0
    """Changes of tenancy."""
    new_meter_points: int = 0
    """New electricity connections (new MPANs, each registered to a supplier)."""
    settlement_changes: int = 0
    """Half-hourly flag changes of electricity import meter points (each flipped)."""


def churn_changes(
    registration: RegistrationData,
    users: Iterable[User],
    churn: Churn,
    seed: int,
    first_seq: Mapping[Register, int] | None = None,
) -> dict[Register, list[RegisterChange]]:
    """The changes of ``churn`` for a fleet, per register, numbered from ``first_seq`` (1 by
    default); the same inputs give the same changes. Meter points are chosen at random without
    replacement within each kind; ``ValueError`` if the fleet has too few."""
    rng = np.random.default_rng(seed)
    seqs = {r: (first_seq or {}).get(r, 1) for r in Register}
    out: dict[Register, list[RegisterChange]] = {r: [] for r in Register}
    day = churn.effective

    def next_id(register: Register) -> ChangeId:
        cid = ChangeId(register, seqs[register])
        seqs[register] += 1
        return cid

    def pick(points: list[MeterPoint], n: int, what: str) -> list[MeterPoint]:
        if n > len(points):
            raise ValueError(f"{what}: {n} asked, the fleet has {len(points)} meter points to use")
        chosen: list[int] = sorted(int(i) for i in rng.choice(len(points), size=n, replace=False))
        return [points[i] for i in chosen]

    mps = sorted(registration.meter_points.values(), key=lambda m: m.mpxn)
    suppliers = {
        Fuel.ELECTRICITY: sorted({u.party_id for u in users if Role.IS in u.roles}),
        Fuel.GAS: sorted({u.party_id for u in users if Role.GS in u.roles}),
    }
    import_points = [m for m in mps if m.fuel is Fuel.ELECTRICITY and not m.export]
    registered = [
        m
        for m in mps
        if not m.export and m.supplier_on(day) is not None and len(suppliers[m.fuel]) > 1
    ]
    for mp in pick(registered, churn.supplier_changes, "supplier changes"):
        current = mp.supplier_on(day)
        choices = [s for s in suppliers[mp.fuel] if s != current]
        gainer = choices[int(rng.integers(len(choices)))]
        if mp.fuel is Fuel.ELECTRICITY:
            out[Register.ELECTRICITY].append(
                ElectricitySupplierChange(
                    change_id=next_id(Register.ELECTRICITY),
                    effective=day,
                    mpxn=mp.mpxn,
                    supplier=gainer,
                )
            )
        else:
            out[Register.GAS].append(
                GasSupplierChange(
                    change_id=next_id(Register.GAS), effective=day, mpxn=mp.mpxn, supplier=gainer
                )
            )
    for mp in pick(mps, churn.tenancy_changes, "tenancy changes"):
        register = Register.ELECTRICITY if mp.fuel is Fuel.ELECTRICITY else Register.GAS
        out[register].append(
            TenancyChange(change_id=next_id(register), effective=day, mpxn=mp.mpxn)
        )
    for mp in pick(import_points, churn.settlement_changes, "settlement changes"):
        flipped = (
            Settlement.NON_HALF_HOURLY
            if mp.settlement_on(day) is Settlement.HALF_HOURLY
            else Settlement.HALF_HOURLY
        )
        out[Register.ELECTRICITY].append(
            SettlementChange(
                change_id=next_id(Register.ELECTRICITY),
                effective=day,
                mpxn=mp.mpxn,
                settlement=flipped,
            )
        )
    if churn.new_meter_points:
        if not import_points or not suppliers[Fuel.ELECTRICITY]:
            raise ValueError("new meter points: the fleet has no electricity meter point to copy")
        operators = {m.area: m.network_operator for m in import_points}
        areas = sorted(operators)
        serial = 9_000_000_000 + int(rng.integers(100_000_000))
        for _ in range(churn.new_meter_points):
            area = areas[int(rng.integers(len(areas)))]
            mpan = make_mpan(area, serial)
            while mpan in registration.meter_points:
                serial += 1
                mpan = make_mpan(area, serial)
            serial += 1
            supplier = suppliers[Fuel.ELECTRICITY][
                int(rng.integers(len(suppliers[Fuel.ELECTRICITY])))
            ]
            mp = MeterPoint(
                mpan,
                Fuel.ELECTRICITY,
                area,
                operators[area],
                (SupplierRegistration(supplier, day),),
            )  # every new connection gets a smart meter, read by the hub, settled half-hourly
            out[Register.ELECTRICITY].append(
                NewMeterPoint(
                    change_id=next_id(Register.ELECTRICITY), effective=day, meter_point=mp
                )
            )
    return {r: changes for r, changes in out.items() if changes}


def next_seqs(inbox: Path) -> dict[Register, int]:
    """The first free sequence number per register, after every change file in ``inbox`` and
    its ``applied/`` and ``rejected/`` folders (so written churn never repeats an id)."""
    out = dict.fromkeys(Register, 1)
    for folder in (inbox, inbox / "applied", inbox / "rejected"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            register = register_of(path.name)
            if register is None or not path.is_file():
                continue
            with path.open(encoding="utf-8-sig", newline="") as fh:
                rows = csv.reader(fh)
                next(rows, None)
                for row in rows:
                    if row and row[0].isdigit():
                        out[register] = max(out[register], int(row[0]) + 1)
    return out


def write_change_files(
    inbox: str | Path, changes: Mapping[Register, Sequence[RegisterChange]]
) -> dict[str, int]:
    """Write one change file per register into ``inbox`` (created if missing), named
    ``<register>-<first seq, 8 digits>.csv`` (so name order is sequence order), each written
    aside and renamed in whole so a running hub never reads half a file; returns the number of
    changes per file name."""
    directory = Path(inbox)
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for register, items in changes.items():
        if not items:
            continue
        name = f"{register.value}-{items[0].change_id.seq:08d}.csv"
        if (directory / name).exists():
            raise FileExistsError(f"change file {directory / name} exists already")
        aside = directory.parent / f".{name}.part"
        _write(aside, ("".join(change_file_lines(register, items)).encode(),))
        os.replace(aside, directory / name)
        counts[name] = len(items)
    return counts
