"""docs/services.md against the code it is generated from, and the commands that show it."""

from __future__ import annotations

import json
from pathlib import Path

from hub.flows.firmware import validate_update
from hub.flows.non_device import HANDLERS
from hub.reference.catalogue import CATALOGUE
from hub.reference.service_docs import HUB_BODIES, example, services, services_markdown
from hub.reference.service_params import validate_params
from hub.reference.utrn import UtrnVerdict, check_utrn
from tests.live_support import make_fleet, supplier_meter
from tests.test_cli_errors import dcc

ROOT = Path(__file__).resolve().parents[1]


def test_docs_services_md_is_what_the_code_renders() -> None:
    on_disk = (ROOT / "docs" / "services.md").read_text(encoding="utf-8")
    assert on_disk == services_markdown(), (
        "docs/services.md is stale: run "
        "'.venv/bin/python -m hub.reference.service_docs > docs/services.md'"
    )


def test_every_documented_example_is_valid_for_its_service() -> None:
    for service in services():
        params = example(service.code)
        if service.code in ("11.1", "11.4"):
            assert validate_update(params) == [], service.code
        elif not service.non_device:
            assert validate_params(service.code, params) == [], service.code


def test_the_documented_hub_answers_name_the_fields_the_handlers_return(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet", sites=5, seed=2)
    device = next(iter(fleet.inventory.devices.values()))
    assert set(HUB_BODIES) == set(HANDLERS)
    for code, handler in HANDLERS.items():
        body = handler(fleet.inventory, device)
        assert [name for name, _ in HUB_BODIES[code]] == list(body), code


def test_catalogue_service_shows_one_service_as_a_table_and_as_json() -> None:
    table = dcc("catalogue", "--service", "2.2")
    assert table.returncode == 0, table.stderr
    assert "Top Up Device" in table.stdout
    assert "utrn" in table.stdout
    as_json = dcc("catalogue", "--service", "2.2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["code"] == "2.2"
    assert doc["priority"] == CATALOGUE["2.2"].priority.name
    assert [p["name"] for p in doc["params"]] == ["utrn"]
    assert doc["example_request"]["params"]["utrn"]
    assert "E4" in [r["code"] for r in doc["refusals"]]


def test_catalogue_refuses_an_unknown_service_with_status_2() -> None:
    result = dcc("catalogue", "--service", "99.9")
    assert result.returncode == 2
    assert "unknown service" in result.stderr


def test_dcc_utrn_issues_a_code_the_meter_accepts(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=20, seed=4)
    user, meter = supplier_meter(fleet)
    args = ("--device", meter.device_id, "--amount-pence", "750", "--counter", "3")
    plain = dcc("utrn", "--fleet", str(fleet_dir), *args)
    assert plain.returncode == 0, plain.stderr
    result = dcc("utrn", "--fleet", str(fleet_dir), *args, "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["utrn"] == plain.stdout.strip()
    assert doc["supplier"] == fleet.users[user].party_id
    verdict, fields = check_utrn(doc["utrn"], meter.device_id, key=doc["supplier"])
    assert verdict is UtrnVerdict.VALID
    assert fields is not None
    assert fields.amount_pence == 750
    assert fields.counter == 3


def test_dcc_utrn_refuses_a_device_the_fleet_does_not_hold(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    make_fleet(fleet_dir, sites=5, seed=4)
    result = dcc(
        "utrn",
        "--fleet",
        str(fleet_dir),
        "--device",
        "FFFFFFFFFFFFFFFF",
        "--amount-pence",
        "100",
        "--counter",
        "1",
    )
    assert result.returncode == 2
    assert "not in the fleet" in result.stderr
