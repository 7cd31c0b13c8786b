"""Writes a generated fleet (``simfield.fleet.FleetArrays``) as a fleet directory.

Decides: nothing about the fleet; only how its columns become the CSV files of
``docs/fleet-files.md``. Big files are rendered with numpy (every field is a fixed-width
block of bytes padded with NUL, rows are laid side by side and the NULs squeezed out), which
is an order of magnitude faster than a csv writer per row.
Must never: change the arrays, read the clock or write anything that differs between two runs
on the same arrays (output is byte-identical).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from hub.registers import records
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
